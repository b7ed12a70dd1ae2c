/* src/store/local.c - placeholder until its owner lands it. */
