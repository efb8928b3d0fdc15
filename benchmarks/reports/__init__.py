"""Report writers: tables of docs/ rendered from the results files."""
