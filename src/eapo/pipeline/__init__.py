"""The work of eapo's commands as library functions with typed inputs and a result object: the warm start of the
tiny world's policy (`eapo.pipeline.warmstart`). The command line (`eapo.cli`) parses options and calls these."""
