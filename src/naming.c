/* src/naming.c - placeholder until its owner lands it. */
