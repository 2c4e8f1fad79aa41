"""A model's training text, found and indexed: where it is (given, or as `tfchat train` recorded it), its
index in the model's own tokens, and the questions the commands and the app ask of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfchat.core.corpus.corpus_text import read_corpus
from tfchat.core.corpus.index import Continuations, CorpusIndex
from tfchat.core.corpus.index_cache import LoadedIndex, load_or_build
from tfchat.core.corpus.copied_spans import CopiedSpan, Overlap, TokenizerFacts, corpus_around, overlap_of, tokenizer_facts
from tfchat.core.errors import CorpusError
from tfchat.core.system.paths import user_path

GIVE_IT = "give the text it was trained on with --corpus FILE (in the app: /corpus PATH)"


def corpus_path_for(explicit: str | None, recorded: dict | None) -> Path:
    """The corpus to use: the one given, else the one the checkpoint records if it is still there (whether it
    is unchanged is checked where it is read: `TrainingText.open`'s `trained_sha256`)."""
    if explicit:
        return user_path(explicit)
    if recorded is None:
        raise CorpusError(f"no training text is known for this model: {GIVE_IT}")
    path = Path(recorded["path"])
    if not path.is_file():
        raise CorpusError(f"the model was trained on {path}, which is not there any more: {GIVE_IT}")
    return path


def trained_sha256(explicit: str | None, recorded: dict | None) -> str | None:
    """The hash the recorded corpus must still have; none for a corpus the user gave."""
    return None if explicit or recorded is None else recorded["sha256"]


@dataclass
class TrainingText:
    loaded: LoadedIndex
    encoding: object  # the model's tokenizer
    facts: TokenizerFacts

    @classmethod
    def open(cls, path: Path, encoding, build: bool = True, trained_sha256: str | None = None) -> TrainingText:
        """Read and index `path` in `encoding`'s tokens (from the cache when it was indexed before); without
        `build`, only from the cache (else NotIndexedYet). With `trained_sha256`, the text must still be the
        one the model was trained on (hashed as it is read, once)."""
        corpus = read_corpus(path)
        if trained_sha256 is not None and corpus.sha256 != trained_sha256:
            raise CorpusError(f"{path} changed since the model was trained on it (another SHA-256): {GIVE_IT}")
        facts = tokenizer_facts(encoding)
        loaded = load_or_build(corpus, facts.key, lambda text: encoding.encode(text, disallowed_special=()),
                               facts.newlines, build)
        return cls(loaded, encoding, facts)

    @property
    def index(self) -> CorpusIndex:
        return self.loaded.index

    @property
    def path(self) -> Path:
        return self.loaded.corpus.path

    def overlap(self, ids: list[int], min_tokens: int) -> Overlap:
        return overlap_of(self.index, ids, min_tokens, self.encoding)

    def continuations(self, context: list[int], top: int = 10) -> Continuations:
        return self.index.continuations(context, top)

    def around(self, span: CopiedSpan, context_tokens: int = 60) -> str:
        return corpus_around(self.index, self.encoding, span.first_at, span.end - span.start, context_tokens)

    def described(self) -> str:
        loaded = self.loaded
        how = "indexed" if loaded.built else "index read from the cache"
        return (f"{self.path.name}: {len(self.index):,} tokens, {how} in {loaded.seconds:.2f} s, "
                f"{self.index.resident_bytes() / 2**20:.1f} MiB")


def recorded_training_text_if_indexed(recorded: dict | None, encoding) -> TrainingText | None:
    """The training text a checkpoint records, when it is still there, unchanged, and its index is in the
    cache; else None, quietly: for uses that are only faster with it (drafting)."""
    if recorded is None:
        return None
    try:
        return TrainingText.open(corpus_path_for(None, recorded), encoding, build=False,
                                 trained_sha256=trained_sha256(None, recorded))
    except (CorpusError, OSError):
        return None
