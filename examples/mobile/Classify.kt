// Android: classify one string with the one-file model (assets/model.ort).
// build.gradle: implementation 'com.microsoft.onnxruntime:onnxruntime-android:1.32.0'
//               implementation 'com.microsoft.onnxruntime:onnxruntime-extensions-android:0.13.0'
// Not compiled here (no Android SDK); see README.md.
import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import ai.onnxruntime.extensions.OrtxPackage

class Classifier(modelBytes: ByteArray) {
    private val env = OrtEnvironment.getEnvironment()
    private val session: OrtSession = OrtSession.SessionOptions().use { opts ->
        opts.registerCustomOpLibrary(OrtxPackage.getLibraryPath())  // the tokenizer op
        opts.setIntraOpNumThreads(2)
        env.createSession(modelBytes, opts)
    }

    /** (label, score) for one text. */
    fun classify(text: String): Pair<String, Float> {
        val clean = text.replace("\u0000", "")  // string tensors end at NUL
        OnnxTensor.createTensor(env, arrayOf(clean), longArrayOf(1)).use { input ->
            session.run(mapOf("text" to input)).use { out ->
                val label = (out.get("label").get().value as Array<*>)[0] as String
                val score = (out.get("score").get().value as FloatArray)[0]
                return label to score
            }
        }
    }
}
