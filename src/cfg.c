/* src/cfg.c - placeholder until its owner lands it. */
