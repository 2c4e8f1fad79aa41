"""Random GPT-2 folders as transformers' save_pretrained leaves them, with byte-level BPE tokenizers trained here."""
import json

import torch

TRAINING_TEXT = ("The salesperson listens first, then asks what the customer needs. Naïve café prices, "
                 "1234 units, 🤖 emoji and    spaces.\n") * 40


def make_tokenizer():
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TRAINING_TEXT], vocab_size=600, special_tokens=["<|endoftext|>"], show_progress=False)
    return bpe


def make_gpt2(folder, activation="gelu_new", tied=True, layout="tokenizer.json", weights="safetensors",
              n_positions=16, seed=0, n_embd=48, n_head=4, **config_extra):
    """A random GPT-2 folder, as save_pretrained writes it; the transformers model too."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = make_tokenizer()
    eos = bpe.token_to_id("<|endoftext|>")
    config = GPT2Config(vocab_size=bpe.get_vocab_size(), n_positions=n_positions, n_embd=n_embd, n_layer=2, n_head=n_head,
                        activation_function=activation, tie_word_embeddings=tied, bos_token_id=eos,
                        eos_token_id=eos, **config_extra)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # decisive logits, as a trained model has
        model.lm_head.weight.mul_(8)
    model.save_pretrained(folder)
    if weights == "bin":  # what transformers 4 wrote without safetensors
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    if layout == "tokenizer.json":
        GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
    else:  # transformers 4's files, the book's time
        bpe.save_model(str(folder))
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer",
                                                                  "eos_token": "<|endoftext|>"}))
    return model
