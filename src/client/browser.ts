/**
 * @module
 * Entry of the browser bundle (`/herald.js`): puts `Herald` on the page's global object.
 */
import { Herald } from './herald.js';

(globalThis as { Herald?: typeof Herald }).Herald = Herald;
