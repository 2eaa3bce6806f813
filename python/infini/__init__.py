"""infini: language models with unbounded context (Infini-attention), in C++ with PyTorch's habits.

    import infini
    model = infini.load("models/passkey-infini-delta")        # a torch.nn.Module
    logits, state = model(tokens)                               # tokens: LongTensor (B, T)
    session = model.session()
    session.feed(open("book.txt").read())                       # any length: fixed-size state
    print(session.generate("...", max_tokens=20, temperature=0))

docs/PYTHON.md has a worked example. Everything runs in the C++ engine (libinfini.so); the tensors
you see are the engine's own, shared, with autograd intact.
"""
import codecs
import json
import os

import torch

from . import _C
from ._C import Error, set_threads, usable_cpus

__version__ = _C.__version__
__all__ = ["Error", "Model", "Session", "State", "Tokenizer", "evaluate", "load", "passkey", "set_threads",
           "usable_cpus"]

State = _C.State
Tokenizer = _C.Tokenizer


def _text(data):
    """Engine text (bytes) as str; bytes that are not UTF-8 become U+FFFD."""
    return data.decode("utf-8", errors="replace")


class Model(torch.nn.Module):
    """An infini model: a torch.nn.Module over the C++ engine's weights.

    ``infini.Model(config)`` makes new weights from a config dict (docs/MODEL.md; missing fields take
    their defaults) as ``infini train --seed`` would; ``infini.load(dir)`` reads a model folder.
    ``parameters()`` and ``named_parameters()`` are the engine's own tensors under their checkpoint
    names, so any torch.optim optimizer trains the model. The model runs on the CPU in its config's
    dtype; ``.to()`` to anything else is refused.
    """

    def __init__(self, config=None, *, seed=1234, tokenizer=None, _engine=None):
        super().__init__()
        if _engine is None:
            if config is None:
                config = {}
            if not isinstance(config, dict):
                raise TypeError(f"infini.Model: config must be a dict, not {type(config).__name__}")
            _engine = _C.Model(json.dumps(config), seed, tokenizer)
        object.__setattr__(self, "_engine", _engine)
        for name, tensor in _engine.named_parameters():
            # The engine's tensor itself (not an nn.Parameter copy): gradients land where it reads them.
            self._parameters[name] = tensor

    @property
    def config(self):
        return json.loads(self._engine.config_json)

    @property
    def tokenizer(self):
        return _TextTokenizer(self._engine.tokenizer)

    @property
    def path(self):
        """The folder the model was loaded from or last saved to ('' for one made in code)."""
        return self._engine.path

    def forward(self, tokens, state=None, routing="topk"):
        """Reads tokens, a LongTensor (B, T), after the sequences ``state`` describes (None: empty).

        Returns ``(logits, state)``: logits (B, T, vocab_size) and the state after the last token.
        Any chunking of a sequence gives the same logits; gradients flow through the state until
        ``state.detach()``. ``routing`` matters to Mixture-of-Depths models only ("topk" trains,
        "causal" is what reading and sampling use).
        """
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"infini.Model: tokens must be a torch.LongTensor (B, T), not {type(tokens).__name__}")
        return self._engine.forward(tokens, State() if state is None else state, routing)

    def initial_state(self, batch=1):
        return self._engine.initial_state(batch)

    def save(self, directory):
        """Writes a model folder that ``infini.load`` and the ``infini`` command line read."""
        self._engine.save(os.fspath(directory))

    def session(self):
        """A session over these weights, for reading long inputs and generating (see Session)."""
        return Session(self)

    def identity(self):
        """A fingerprint of the config and current weights; state files name it."""
        return self._engine.identity()

    def parameter_count(self):
        return self._engine.parameter_count()

    def _apply(self, fn, *args, **kwargs):
        for name, tensor in self._parameters.items():
            applied = fn(tensor)
            if applied is not tensor and (applied.dtype != tensor.dtype or applied.device != tensor.device):
                raise Error(f"infini models run on the CPU in their config's dtype ({tensor.dtype}); "
                            f"{name} cannot move to {applied.device} / {applied.dtype}")
        return self

    def extra_repr(self):
        c = self.config
        return (f"memory={c['memory']}, layers={c['n_layers']}, d_model={c['d_model']}, "
                f"segment_len={c['segment_len']}, parameters={self.parameter_count()}")


def load(directory):
    """Loads a model folder (config.json, model.safetensors, tokenizer), checking every byte."""
    return Model(_engine=_C.Model.load(os.fspath(directory)))


class _TextTokenizer:
    """The model's tokenizer: str <-> list of ids."""

    def __init__(self, engine):
        self._engine = engine

    @property
    def kind(self):
        return self._engine.kind

    @property
    def vocab_size(self):
        return self._engine.vocab_size

    def encode(self, text):
        return self._engine.encode(text)

    def decode(self, ids):
        return _text(self._engine.decode(list(ids)))


def _sample_options(max_tokens, temperature, top_k, top_p, repetition_penalty, repetition_window, seed, stop):
    o = _C.SampleOptions()
    o.max_tokens = max_tokens
    o.temperature = temperature
    o.top_k = top_k
    o.top_p = top_p
    o.repetition_penalty = repetition_penalty
    o.repetition_window = repetition_window
    o.seed = seed
    o.stop = [] if stop is None else ([stop] if isinstance(stop, str) else list(stop))
    return o


class Session:
    """One sequence read by a model: feed text of any length, then generate.

    Memory stays at one segment's cache plus the compressive memory however long the input. A session
    reads the weights as they were when it was made: make a new one after training further.
    """

    def __init__(self, model):
        engine = model._engine if isinstance(model, Model) else model
        self._model = model
        self._engine = _C.Session(engine)

    @classmethod
    def load(cls, model, path):
        """A session that continues from a state file (written by ``save`` or ``infini read``)."""
        session = cls(model)
        session._engine.load(os.fspath(path))
        return session

    def feed(self, text_or_ids, progress=None):
        """Reads a str, or a list / 1-D LongTensor of ids, after everything read so far.

        ``progress(done, total)`` is called after each piece of at most 16384 tokens.
        """
        if isinstance(text_or_ids, str):
            self._engine.feed_text(text_or_ids, progress)
        elif isinstance(text_or_ids, torch.Tensor):
            if text_or_ids.dim() != 1 or text_or_ids.dtype != torch.int64:
                raise TypeError("Session.feed: a tensor of ids must be a 1-D LongTensor")
            self._engine.feed_tokens(text_or_ids.tolist(), progress)
        else:
            self._engine.feed_tokens(list(text_or_ids), progress)

    def feed_file(self, path, progress=None):
        """Streams a text file (never loaded whole); ``progress(bytes_done, bytes_total)``."""
        self._engine.feed_file(os.fspath(path), progress)

    def generate(self, prompt="", max_tokens=200, temperature=0.8, top_k=0, top_p=1.0, repetition_penalty=1.0,
                 repetition_window=256, seed=1234, stop=None):
        """Reads ``prompt``, then samples up to ``max_tokens`` tokens; returns the new text.

        ``temperature`` 0 is greedy. Generation ends at the first of the ``stop`` strings, which is not
        returned. The same arguments give exactly the text ``infini generate`` gives.
        """
        options = _sample_options(max_tokens, temperature, top_k, top_p, repetition_penalty, repetition_window,
                                  seed, stop)
        return _text(self._engine.generate(prompt, options))

    def stream(self, prompt="", max_tokens=200, temperature=0.8, top_k=0, top_p=1.0, repetition_penalty=1.0,
               repetition_window=256, seed=1234, stop=None):
        """Like generate, but yields the text piece by piece as it is sampled."""
        options = _sample_options(max_tokens, temperature, top_k, top_p, repetition_penalty, repetition_window,
                                  seed, stop)
        generation = self._engine.start_generation(prompt, options)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            piece = generation.next()
            if piece is None:
                break
            text = decoder.decode(piece)
            if text:
                yield text
        text = decoder.decode(b"", final=True)
        if text:
            yield text

    def generate_tokens(self, prompt_ids, max_tokens=200, temperature=0.8, top_k=0, top_p=1.0,
                        repetition_penalty=1.0, repetition_window=256, seed=1234):
        """The same on ids: returns the list of new token ids (no stop strings)."""
        options = _sample_options(max_tokens, temperature, top_k, top_p, repetition_penalty, repetition_window,
                                  seed, None)
        return self._engine.generate_tokens(list(prompt_ids), options)

    @property
    def last_logits(self):
        """(vocab_size,) float32 logits of the token after the last one read (None before any)."""
        logits = self._engine.last_logits
        return logits if logits.numel() else None

    @property
    def position(self):
        return self._engine.position

    @property
    def state_bytes(self):
        return self._engine.state_bytes

    def state(self):
        """A detached copy of the state (batch 1), usable with ``model(tokens, state)``."""
        return self._engine.state()

    def clear(self):
        self._engine.clear()

    def snapshot(self):
        """Where the session stands, in memory: ``restore`` it before each continuation."""
        return self._engine.snapshot()

    def restore(self, snapshot):
        self._engine.restore(snapshot)

    def save(self, path):
        """Writes a state file (atomically) that ``Session.load`` and ``infini generate --state`` read."""
        self._engine.save(os.fspath(path))


def _engine_of(model):
    if not isinstance(model, Model):
        raise TypeError(f"expected an infini.Model, not {type(model).__name__}")
    return model._engine


def evaluate(model, data, max_documents=0, max_tokens=0, forget_memory=False, routing="causal", split="",
             progress=None):
    """Loss over whole documents, memory carried through each: the dict ``infini eval --json`` prints."""
    return json.loads(_C.evaluate(_engine_of(model), os.fspath(data), max_documents, max_tokens, forget_memory,
                                  routing, split, progress))


def passkey(model, lengths=(32768, 131072, 262144, 524288, 1048576), depths=(0.0, 0.5, 1.0), trials=20, seed=1,
            key_min=1, key_max=50000, progress=None):
    """Passkey retrieval (the paper's Table 3): the dict ``infini passkey --json`` prints.

    ``progress(cell)`` gets each finished cell as a dict.
    """
    callback = None if progress is None else (lambda cell: progress(json.loads(cell)))
    return json.loads(_C.passkey(_engine_of(model), list(lengths), [float(d) for d in depths], trials, seed,
                                 key_min, key_max, callback))
