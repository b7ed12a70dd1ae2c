/* src/route.c - placeholder until its owner lands it. */
