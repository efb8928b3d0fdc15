"""The llama.cpp backend of GemModel: ``GemModel.from_pretrained(backend="llamacpp")`` (extra ``gem-rag[llamacpp]``).

- ``context``: the llama.cpp model and context, decode calls, KV-cache sequences, the embedding/LoRA switch;
- ``lora``: a GEM artefact's adapter converted to a llama.cpp LoRA file (cached);
- ``model``: ``LlamaCppGemModel``, the GemModel whose forward passes run there.
"""
