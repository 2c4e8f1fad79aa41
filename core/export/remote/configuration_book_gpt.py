"""The configuration of the book's model ("Transformer from scratch", chapter 18) for transformers.

Written by `tfchat export`. The attribute names are transformers' usual ones, so its tools (and vLLM's
Transformers backend) read the shape without knowing the model.
"""
try:
    from transformers import PreTrainedConfig
except ImportError:  # transformers 4
    from transformers import PretrainedConfig as PreTrainedConfig


class BookGPTConfig(PreTrainedConfig):
    model_type = "book_gpt"
    keys_to_ignore_at_inference = ["past_key_values", "cache"]

    def __init__(self, vocab_size=100256, embedding_rows=None, hidden_size=80, num_attention_heads=4,
                 num_hidden_layers=6, max_position_embeddings=128, layer_norm_eps=1e-5, initializer_range=0.02,
                 use_cache=True, tie_word_embeddings=False, head_dim=None, **kwargs):
        self.vocab_size = vocab_size  # the output layer's rows (the book's max_token_value)
        # The embedding's rows: vocab_size in the chapter's model, one more in the repository's model.py.
        self.embedding_rows = embedding_rows if embedding_rows is not None else vocab_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads
        # What the attention weights hold per head: the real head size, or more, padded with zeros
        # (an export pads heads to a size attention kernels take; the scale stays the real size's).
        self.head_dim = head_dim if head_dim is not None else hidden_size // num_attention_heads
        self.num_hidden_layers = num_hidden_layers
        self.intermediate_size = 4 * hidden_size
        self.max_position_embeddings = max_position_embeddings  # the book's context_length: the window
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.hidden_act = "relu"
        self.use_cache = use_cache
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
