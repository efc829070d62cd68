export * from './rtnl.js';
export * from './netns.js';
export * from './channel.js';
export * from './errors.js';
export * from './address.js';
export * as C from './constants.js';
export * from './genl.js';
