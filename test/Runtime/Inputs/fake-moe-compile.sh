#!/bin/sh
# Stands in for moe-compile in moe-run-mlir.test. moe-run calls it as
#   moe-compile LAYER.mlir --target cpu -o OUT.so
# It appends its arguments to $FAKE_LOG and then, by $FAKE_MODE:
#   ok      copies $FAKE_MODULE to OUT.so (and chatters on stdout)
#   fail    prints one error line and exits with 1
#   nothing exits with 0 without writing OUT.so
#   signal  kills itself with SIGKILL
echo "$@" >> "$FAKE_LOG"
case "$FAKE_MODE" in
  ok)
    echo "fake moe-compile: compiling $1"
    cp "$FAKE_MODULE" "$5" ;;
  fail)
    echo "moe-compile: error: $1: fake failure" >&2
    exit 1 ;;
  nothing) ;;
  signal)
    kill -9 $$ ;;
esac
