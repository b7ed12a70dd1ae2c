/* src/store/s3.c - placeholder until its owner lands it. */
