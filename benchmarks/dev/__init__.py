"""Development-set tuning: the benchmarks that chose the defaults, on data written for or held out by the project."""
