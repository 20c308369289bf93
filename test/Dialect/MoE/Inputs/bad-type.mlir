// Hostile input of hostile-exit.test: an unknown op after a negative tensor
// size; parsing stops at the first error. Line numbers are checked there.
func.func @bad(%x: tensor<8x-16xf32>) {
  moe.nonexistent
  return
}
