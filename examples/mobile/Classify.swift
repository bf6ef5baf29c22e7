// iOS: classify one string with the one-file model (model.ort in the app bundle).
// Podfile: pod 'onnxruntime-objc', '1.32.0'
//          pod 'onnxruntime-extensions-c', '0.13.0'
// Bridging header: #include <onnxruntime_extensions.h>   (declares RegisterCustomOps)
// Not compiled here (no Xcode); see README.md.
import Foundation
import onnxruntime_objc

final class Classifier {
    private let session: ORTSession

    init(modelPath: String) throws {
        let env = try ORTEnv(loggingLevel: .warning)
        let options = try ORTSessionOptions()
        try options.registerCustomOps(functionPointer: RegisterCustomOps)  // the tokenizer op
        try options.setIntraOpNumThreads(2)
        session = try ORTSession(env: env, modelPath: modelPath, sessionOptions: options)
    }

    /// (label, score) for one text.
    func classify(_ text: String) throws -> (String, Float) {
        let clean = text.replacingOccurrences(of: "\u{0}", with: "")  // string tensors end at NUL
        let input = try ORTValue(tensorStringData: [clean], shape: [1])
        let out = try session.run(withInputs: ["text": input], outputNames: ["label", "score"],
                                  runOptions: nil)
        let label = try out["label"]!.tensorStringData()[0]
        let score = try out["score"]!.tensorData() as Data
        return (label, score.withUnsafeBytes { $0.load(as: Float.self) })
    }
}
