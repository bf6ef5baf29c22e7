// iOS: classify one string with an ExecuTorch bundle (`edgebert bundle` of an
// `export --format executorch` artifact): model.pte, tokenizer.json, manifest.json, plus
// tokenizer_config.json copied from the artifact (swift-transformers reads both).
// Swift Package Manager: https://github.com/pytorch/executorch, branch swiftpm-1.5.1:
//   products executorch, backend_xnnpack, kernels_optimized (linker flag -all_load);
//   https://github.com/huggingface/swift-transformers: product Tokenizers.
// Not compiled here (no Xcode); see README.md.
import ExecuTorch
import Foundation
import Tokenizers

final class PteClassifier {
    private let module: Module
    private let tokenizer: Tokenizer
    private let labels: [String]
    private let maxLength: Int  // the program is planned for at most this many tokens

    init(bundle: URL) async throws {
        let data = try Data(contentsOf: bundle.appendingPathComponent("manifest.json"))
        let manifest = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        labels = manifest["labels"] as! [String]
        maxLength = manifest["max_length"] as! Int
        module = Module(filePath: bundle.appendingPathComponent("model.pte").path)
        try module.load("forward")
        tokenizer = try await AutoTokenizer.from(modelFolder: bundle)
    }

    /// (label, score) for one text.
    func classify(_ text: String) throws -> (String, Float) {
        var ids = tokenizer.encode(text: text).map(Int64.init)  // [CLS] ... [SEP]
        if ids.count > maxLength { ids = Array(ids.prefix(maxLength - 1)) + [ids.last!] }
        let shape = [1, ids.count]  // [batch 1, tokens]
        let inputs = [Tensor<Int64>(ids, shape: shape),  // the program's 3 int64 inputs
                      Tensor<Int64>([Int64](repeating: 1, count: ids.count), shape: shape),
                      Tensor<Int64>([Int64](repeating: 0, count: ids.count), shape: shape)]
        let logits: [Float] = try module.forward(inputs)[0].tensor()!.scalars()  // [labels]
        let top = logits.max()!
        let e = logits.map { exp($0 - top) }
        let best = logits.firstIndex(of: top)!
        return (labels[best], e[best] / e.reduce(0, +))
    }
}
