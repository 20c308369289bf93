// Hostile input of hostile-exit.test: a top_k beyond int64 (parser error).
// Line numbers are checked there.
func.func @bad(%l: tensor<?x8xf32>) {
  %w, %ids = moe.gate %l routing <softmax, top_k = 99999999999999999999>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}
