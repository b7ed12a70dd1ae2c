/* src/fs.c - placeholder until its owner lands it. */
