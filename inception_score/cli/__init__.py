"""The command line, `inception-score`: options, the run, outputs, the report and the plots."""
