"""The two Python files `tfchat export` copies into a Hugging Face folder, for transformers to load with
`trust_remote_code`. They import transformers and torch only: they run without tfchat installed."""
