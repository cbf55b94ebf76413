/**
 * @module
 * Reading a config file: JSON or YAML by extension, parse errors reported at `file:line:column`
 * without quoting the text around them (it may hold a secret).
 */
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { HeraldError } from '../core/errors.js';

/** The document in a config file; `where` names the setting that named the file, for messages. */
export function readConfigDocument(path: string, where: string): unknown {
  const extension = extname(path).toLowerCase();
  if (extension !== '.json' && extension !== '.yaml' && extension !== '.yml') {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: expected a .json, .yaml or .yml file, got ${JSON.stringify(path)}`);
  }
  let text: string;
  try {
    text = readSettingFile(path);
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: cannot read ${JSON.stringify(path)}: ${(error as Error).message}`, { cause: error });
  }
  return extension === '.json' ? parseJsonStrict(path, text) : parseYamlFile(path, text);
}

/** The largest file a setting may name (config file, permissions, keys): far above any real one. */
export const MAX_SETTING_FILE_BYTES = 4 * 1024 * 1024;

/**
 * The text of a file a setting names. Throws, saying why, when it cannot be read, is not a
 * regular file (a FIFO or a device would hang the start or fill memory) or is larger than any real one.
 */
export function readSettingFile(path: string): string {
  const stat = statSync(path);
  if (!stat.isFile()) throw new Error('not a regular file');
  if (stat.size > MAX_SETTING_FILE_BYTES) throw new Error(`${stat.size} bytes, more than the ${MAX_SETTING_FILE_BYTES} a settings file may have`);
  return readFileSync(path, 'utf8');
}

/**
 * JSON text parsed, refusing a key given twice in one object: JSON.parse keeps the last without a
 * word (YAML refuses it), so a rule or a key written twice would silently change what runs.
 * Errors name `label:line:column` without quoting the text (it may hold a secret).
 */
export function parseJsonStrict(label: string, withBom: string): unknown {
  const text = withBom.replace(/^\uFEFF/, '');
  const value = parseJsonFile(label, text);
  // JSON is YAML: its parser finds the duplicates, with their place.
  const duplicate = parseDocument(text, { prettyErrors: false }).errors.find((error) => error.code === 'DUPLICATE_KEY');
  if (duplicate !== undefined) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${label}:${lineColumn(text, duplicate.pos[0])}: a key is given twice in one object`);
  return value;
}

function parseJsonFile(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8's message may quote the text around the error (a secret, perhaps): keep only its kind.
    const message = (error as Error).message;
    const at = /at position (\d+)/.exec(message);
    const offset = at !== null ? Number(at[1]) : message.includes('end of JSON input') ? text.length : jsonErrorOffset(text);
    const what = message
      .replace(/^Unexpected token .*? is not valid JSON$/s, 'Unexpected token')
      .replace(/ in JSON at position \d+.*$/s, '')
      .replace(/,? ".*$/s, '');
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}:${lineColumn(text, offset)}: not valid JSON: ${what}`, { cause: error });
  }
}

/** Where JSON text stops being the start of a valid document, for messages without a position. */
function jsonErrorOffset(text: string): number {
  const viable = (length: number) => {
    try {
      JSON.parse(text.slice(0, length));
      return true;
    } catch (error) {
      const message = (error as Error).message;
      const at = /at position (\d+)/.exec(message);
      return message.includes('end of JSON input') || (at !== null && Number(at[1]) >= length);
    }
  };
  let low = 0; // viable
  let high = text.length; // not viable
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (viable(middle)) low = middle;
    else high = middle;
  }
  // Back to the start of a bad word (`tru` of `trust` was viable).
  let offset = high - 1;
  while (offset > 0 && /\w/.test(text[offset - 1]!) && /\w/.test(text[offset]!)) offset--;
  return offset;
}

function parseYamlFile(path: string, text: string): unknown {
  const document = parseDocument(text, { prettyErrors: false });
  const error = document.errors[0];
  if (error !== undefined) {
    // Some messages end with the offending token, which may be a secret: keep only their kind.
    const what = error.message.replace(/: ".*"$/s, '').replace(/; please use .*$/s, '');
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}:${lineColumn(text, error.pos[0])}: not valid YAML: ${what}`, { cause: error });
  }
  try {
    return document.toJS();
  } catch (cause) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: not valid YAML: ${(cause as Error).message}`, { cause });
  }
}

/** `line:column`, both from 1, of an offset in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/** The setting a mistyped key most likely meant, if one of `names` is close. */
export function suggest(key: string, names: readonly string[]): string | undefined {
  const wanted = key
    .replace(/^-+/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/_/g, '-')
    .replace(/^herald-/, '');
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(wanted, name);
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  return best !== undefined && best.distance <= Math.min(3, Math.floor(wanted.length / 3)) ? best.name : undefined;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}
