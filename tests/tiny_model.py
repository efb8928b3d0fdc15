"""The fast tier's model: a GemModel around a random 2-layer Llama (hidden 32) with the real SmolLM2 tokenizer and
the GEM token. Loads in well under a second after the first conversion of the default model (which only its
tokenizer comes from); embeds and generates fast, but its outputs mean nothing: use it for plumbing, limits,
timing. Used by the ``tiny_model`` fixture and by test subprocesses.
"""


def build_tiny_model():
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gem_rag.core.gem import register_special_tokens, special_token_strings
    from gem_rag.core.loading import resolve_model_folder
    from gem_rag.core.model import GemModel

    folder, _ = resolve_model_folder(None)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_special_tokens({"additional_special_tokens": special_token_strings(1)},
                                 replace_extra_special_tokens=False)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    hf_model = LlamaForCausalLM(config)
    special_ids = register_special_tokens(hf_model, tokenizer, 1)  # present already: no resize
    return GemModel(hf_model, tokenizer, name="tiny-random-llama", special_token_ids=special_ids)
