/** ferry's version, sent in the agent's SSH identification string and shown by `devices`. */
export const VERSION = '0.1.0';
