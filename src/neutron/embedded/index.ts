/** The embedded Neutron backend: a durable SQLite store implementing `NeutronApi`. */
export { DEFAULT_PROJECT_ID, EmbeddedNeutron, type EmbeddedNeutronOptions, openEmbeddedNeutron } from './store.ts';
