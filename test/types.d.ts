// The Faye package ships no types; the tests use it dynamically.
declare module 'faye';
