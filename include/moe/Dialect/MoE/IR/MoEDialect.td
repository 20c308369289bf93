//===- MoEDialect.td - MoE dialect definition --------------*- tablegen -*-===//
//
// The `moe` dialect: Mixture-of-Experts layers and their parts.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_IR_MOEDIALECT_TD
#define MOE_DIALECT_MOE_IR_MOEDIALECT_TD

include "mlir/IR/OpBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Mixture-of-Experts layers: routing, dispatch, grouped expert "
                "matmuls and combine";
  let description = [{
    The `moe` dialect models sparse conditional computation. A whole MoE
    block is one `moe.layer`; `moe-decompose` splits it into its parts:

    ```
    moe.gate           router logits [T,E]  -> combine weights [T,K], ids [T,K]
    moe.dispatch       tokens [T,H] + ids   -> rows grouped by expert + row map
    moe.expert_matmul  grouped rows x per-expert weights [E,N,K] (checkpoint layout)
    moe.combine        expert rows + weights + row map -> [T,H]
    ```

    Every routing scheme of the literature (softmax or sigmoid top-k,
    renormalization, scaling, selection-only bias, group-limited top-k,
    capacity with position or score priority, local group dispatching, random
    routing of the second expert, expert choice, noisy gating) is one
    `#moe.routing<...>` attribute on the same ops.

    All ops work on tensors with a (usually dynamic) token dimension `T`, so
    one compiled module serves any number of tokens, including zero.

    Function arguments may carry `moe.weight = "<checkpoint tensor name>"`:
    the runtime binds such an argument to that tensor of a safetensors
    checkpoint. A name containing `{e}` (once) binds a stack of per-expert
    tensors along the argument's first dimension (docs/CompiledModules.md).
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasRegionArgAttrVerify = 1;
  let extraClassDeclaration = [{
    /// Registers the attributes of the dialect (MoEAttrs.cpp).
    void registerAttributes();
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::mpi::MPIDialect",
                           "::mlir::tensor::TensorDialect"];
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

#endif // MOE_DIALECT_MOE_IR_MOEDIALECT_TD
