// Android: classify one string with an ExecuTorch bundle (`edgebert bundle` of an
// `export --format executorch` artifact): model.pte, tokenizer.json, manifest.json.
// build.gradle: implementation 'org.pytorch:executorch-android:1.5.1'   (runtime + XNNPACK)
//               implementation 'ai.djl.huggingface:tokenizers:<DJL version>'
//               implementation 'ai.djl.android:tokenizer-native:<DJL version>'
// Not compiled here (no Android SDK); see README.md.
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer
import java.io.File
import kotlin.math.exp
import org.json.JSONObject
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

class PteClassifier(bundle: File) {
    private val manifest = JSONObject(File(bundle, "manifest.json").readText())
    private val labels = manifest.getJSONArray("labels").let { a -> List(a.length()) { a.getString(it) } }
    // the program is planned for at most max_length tokens (and 8 texts): truncate to it
    private val maxLength = manifest.getInt("max_length")
    private val module = Module.load(File(bundle, "model.pte").path)
    private val tokenizer = HuggingFaceTokenizer.newInstance(
        File(bundle, "tokenizer.json").toPath(),
        mapOf("truncation" to "true", "maxLength" to maxLength.toString(), "padding" to "false"))

    /** (label, score) for one text. */
    fun classify(text: String): Pair<String, Float> {
        val enc = tokenizer.encode(text)  // [CLS] ... [SEP], the bundle's own WordPiece
        val shape = longArrayOf(1, enc.ids.size.toLong())  // [batch 1, tokens]
        val inputs = listOf(enc.ids, enc.attentionMask, enc.typeIds)  // the program's 3 int64 inputs
            .map { EValue.from(Tensor.fromBlob(it, shape)) }
        val logits = module.forward(*inputs.toTypedArray())[0].toTensor().dataAsFloatArray  // [labels]
        val top = logits.max()
        val e = logits.map { exp((it - top).toDouble()) }
        val best = logits.indices.maxBy { logits[it] }
        return labels[best] to (e[best] / e.sum()).toFloat()
    }
}
