"""Export a trained run: safetensors weights, a Hugging Face model directory, the tokenizer.

- ``safetensors``: ``model.safetensors`` (lit_algos parameter names) + ``lit_algos_config.json``
  (the resolved config; ``lit_algos.build_model`` rebuilds the model) + the tokenizer.
- ``hf``: a directory ``transformers.AutoModelForCausalLM.from_pretrained`` loads, for the
  component combinations a Hugging Face architecture computes exactly:
  Llama (RoPE, pre-RMSNorm, SwiGLU, MHA/GQA/MQA), Qwen3 (Llama with QK-norm: ``modern``) and
  GPT-2 (learned positions, pre-LayerNorm, GELU, MHA). Any other combination is refused with the
  nearest architecture and what does not fit.
- the tokenizer, in both forms: ``tokenizer.tiktoken`` + ``tiktoken.json`` (for
  ``tiktoken.Encoding``) and, when the ``tokenizers`` package is installed, a byte-level BPE
  ``tokenizer.json`` that ``transformers.PreTrainedTokenizerFast`` loads.

Only ``safetensors`` is needed to write; ``transformers`` is needed only to load the result.
"""

from __future__ import annotations

import base64
from pathlib import Path

import torch
from safetensors.torch import save_file

from lit_algos.errors import LitAlgosError
from lit_algos.utils.io import atomic_write_json, atomic_write_text

FORMATS = ("safetensors", "hf")


# ---- which HF architecture, if any -----------------------------------------------------------------
# Each candidate lists how a ModelConfig differs from what the transformers class computes. Qwen3 is
# Llama plus per-head RMSNorm on q and k after the projections and before RoPE, with the layers'
# rms_norm_eps, which is lit_algos's qk_norm exactly (same placement, eps and rotate-half RoPE);
# its MLP has no biases.
def _llama_like_misfits(m, name: str) -> list[str]:
    checks = [
        (m.position.kind == "rope", f"position.kind={m.position.kind!r} ({name}: rope)"),
        (m.norm.kind == "rmsnorm", f"norm.kind={m.norm.kind!r} ({name}: rmsnorm)"),
        (m.norm.placement == "pre", f"norm.placement={m.norm.placement!r} ({name}: pre)"),
        (m.final_norm, f"final_norm=false ({name}: a final norm)"),
        (m.mlp.kind == "swiglu", f"mlp.kind={m.mlp.kind!r} ({name}: swiglu)"),
    ]
    return [why for ok, why in checks if not ok]


def _llama_misfits(m) -> list[str]:
    qk = [] if not m.attention.qk_norm else ["attention.qk_norm=true (no QK-norm in Llama: that is Qwen3)"]
    return _llama_like_misfits(m, "Llama") + qk


def _qwen3_misfits(m) -> list[str]:
    checks = [
        (m.attention.qk_norm, "attention.qk_norm=false (Qwen3 always RMS-normalises q and k: that is Llama)"),
        (not m.bias, "bias=true (Qwen3's MLP has no biases)"),
    ]
    return _llama_like_misfits(m, "Qwen3") + [why for ok, why in checks if not ok]


def _gpt2_misfits(m) -> list[str]:
    checks = [
        (m.position.kind == "learned", f"position.kind={m.position.kind!r} (GPT-2: learned)"),
        (m.norm.kind == "layernorm", f"norm.kind={m.norm.kind!r} (GPT-2: layernorm)"),
        (m.norm.placement == "pre", f"norm.placement={m.norm.placement!r} (GPT-2: pre)"),
        (m.final_norm, "final_norm=false (GPT-2: a final norm)"),
        (m.mlp.kind == "gelu", f"mlp.kind={m.mlp.kind!r} (GPT-2: gelu)"),
        (m.n_kv_head == m.n_head, f"{m.n_kv_head} KV heads for {m.n_head} heads (GPT-2: mha)"),
        (not m.attention.qk_norm, "attention.qk_norm=true (no QK-norm in GPT-2)"),
    ]
    return [why for ok, why in checks if not ok]


def _common_misfits(m) -> list[str]:
    checks = [
        (
            m.attention.kind in ("mha", "gqa", "mqa"),
            f"attention.kind={m.attention.kind!r} (full causal attention only)",
        ),
        (
            m.logit_softcap is None,
            f"logit_softcap={m.logit_softcap} (no logit soft-cap in Llama, Qwen3, GPT-2)",
        ),
        (m.mlp.kind != "moe", "mlp.kind='moe' (a mixture of experts)"),
        (m.mixer.kind == "transformer", f"mixer.kind={m.mixer.kind!r} (a Transformer)"),
    ]
    return [why for ok, why in checks if not ok]


# Where transformers has a component that none of the written architectures has (lit_algos does not
# write these; the hint says which architecture an exporter for the model would target).
ELSEWHERE = (
    (lambda m: m.position.kind == "alibi", "ALiBi: Bloom, MPT"),
    (lambda m: m.attention.kind == "sliding", "sliding-window attention: Mistral"),
    (lambda m: m.attention.kind == "mla", "multi-head latent attention: DeepSeek-V2 / DeepSeek-V3"),
    (lambda m: m.logit_softcap is not None, "a final-logit soft-cap: Gemma 2"),
    (
        lambda m: getattr(m, "moe", None) is not None,
        "sigmoid-routed experts with shared experts: DeepSeek-V3",
    ),
)

ARCHITECTURES = {  # name -> (transformers class, misfits)
    "llama": ("LlamaForCausalLM", _llama_misfits),
    "qwen3": ("Qwen3ForCausalLM", _qwen3_misfits),
    "gpt2": ("GPT2LMHeadModel", _gpt2_misfits),
}


def hf_architecture(m) -> str:
    """'llama', 'qwen3' or 'gpt2' for a ModelConfig, or LitAlgosError naming the nearest architecture and
    what differs (and where transformers has a component none of the three has)."""
    common = _common_misfits(m)
    misfits = {name: common + fn(m) for name, (_, fn) in ARCHITECTURES.items()}
    for name, why in misfits.items():
        if not why:
            return name
    # Fewest differences; on a tie the QK-norm decides between Llama and Qwen3 (it is their one difference).
    preferred = "qwen3" if m.attention.qk_norm else "llama"
    nearest = min(misfits, key=lambda name: (len(misfits[name]), name != preferred))
    others = "; ".join(
        f"as {ARCHITECTURES[n][0]}: {', '.join(misfits[n])}" for n in ARCHITECTURES if n != nearest
    )
    hints = [text for applies, text in ELSEWHERE if applies(m)]
    hint = (
        f" transformers has {'; '.join(hints)} (architectures lit_algos does not write yet)." if hints else ""
    )
    raise LitAlgosError(
        "This model cannot be exported to a Hugging Face architecture that computes the same function. "
        f"Nearest: {ARCHITECTURES[nearest][0]}, which differs in: {'; '.join(misfits[nearest])} ({others})."
        f"{hint} Use --format safetensors (the weights with the lit_algos config)."
    )


# ---- state dicts -----------------------------------------------------------------------------------
def _llama(model, m, eot: int, arch: str = "llama"):
    """Llama's config and tensors; ``arch="qwen3"`` adds Qwen3's per-head q/k norms."""
    qwen3 = arch == "qwen3"
    config = {
        "architectures": ["Qwen3ForCausalLM" if qwen3 else "LlamaForCausalLM"],
        "model_type": arch,
        "vocab_size": m.vocab_size,
        "hidden_size": m.n_embd,
        "intermediate_size": m.mlp_hidden,
        "num_hidden_layers": m.n_layer,
        "num_attention_heads": m.n_head,
        "num_key_value_heads": m.n_kv_head,
        "head_dim": m.head_size,
        "max_position_embeddings": m.block_size,
        "rms_norm_eps": m.norm.eps,
        "rope_theta": m.position.rope_base,
        "rope_parameters": {"rope_type": "default", "rope_theta": m.position.rope_base},
        "attention_bias": m.bias,
        "hidden_act": "silu",
        "tie_word_embeddings": m.tie_embeddings,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": "float32",
    }
    if qwen3:  # every layer full causal attention
        config.update(
            use_sliding_window=False, sliding_window=None, layer_types=["full_attention"] * m.n_layer
        )
    else:
        config["mlp_bias"] = m.bias
    sd = model.state_dict()
    out = {"model.embed_tokens.weight": sd["wte.weight"], "model.norm.weight": sd["norm_f.weight"]}
    names = {
        "norm_1.weight": "input_layernorm.weight",
        "norm_2.weight": "post_attention_layernorm.weight",
        "attn.c_q": "self_attn.q_proj",
        "attn.c_k": "self_attn.k_proj",
        "attn.c_v": "self_attn.v_proj",
        "attn.c_proj": "self_attn.o_proj",
        "attn.q_norm.weight": "self_attn.q_norm.weight",
        "attn.k_norm.weight": "self_attn.k_norm.weight",
        "mlp.c_gate": "mlp.gate_proj",
        "mlp.c_up": "mlp.up_proj",
        "mlp.c_proj": "mlp.down_proj",
    }
    for i in range(m.n_layer):
        for ours, theirs in names.items():
            for suffix in ("", ".weight", ".bias"):
                key = f"blocks.{i}.{ours}{suffix}"
                if key in sd and (suffix or ours.endswith("weight")):
                    out[f"model.layers.{i}.{theirs}{suffix}"] = sd[key]
    if not m.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return config, out


def _gpt2(model, m, eot: int):
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": m.vocab_size,
        "n_embd": m.n_embd,
        "n_layer": m.n_layer,
        "n_head": m.n_head,
        "n_positions": m.block_size,
        "n_inner": m.mlp_hidden,
        "activation_function": "gelu",  # lit_algos's GELU is the exact one (GPT-2's own is "gelu_new")
        "layer_norm_epsilon": m.norm.eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": m.tie_embeddings,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": "float32",
    }
    sd = model.state_dict()

    def bias(key: str, size: int) -> torch.Tensor:  # GPT-2 always has biases: a missing one is zero
        return sd[key] if key in sd else torch.zeros(size)

    C, H = m.n_embd, m.mlp_hidden
    out = {
        "transformer.wte.weight": sd["wte.weight"],
        "transformer.wpe.weight": sd["pos.wpe.weight"],
        "transformer.ln_f.weight": sd["norm_f.weight"],
        "transformer.ln_f.bias": bias("norm_f.bias", C),
    }
    for i in range(m.n_layer):
        p, h = f"blocks.{i}.", f"transformer.h.{i}."
        for ours, theirs in (("norm_1", "ln_1"), ("norm_2", "ln_2")):
            out[h + theirs + ".weight"] = sd[p + ours + ".weight"]
            out[h + theirs + ".bias"] = bias(p + ours + ".bias", C)
        # GPT-2's Conv1D stores (in, out): the transpose of nn.Linear's (out, in); q, k, v are fused.
        qkv = torch.cat([sd[p + f"attn.c_{x}.weight"] for x in "qkv"], dim=0)  # (3C, C)
        out[h + "attn.c_attn.weight"] = qkv.t().contiguous()  # (C, 3C)
        out[h + "attn.c_attn.bias"] = torch.cat([bias(p + f"attn.c_{x}.bias", C) for x in "qkv"])
        out[h + "attn.c_proj.weight"] = sd[p + "attn.c_proj.weight"].t().contiguous()
        out[h + "attn.c_proj.bias"] = bias(p + "attn.c_proj.bias", C)
        out[h + "mlp.c_fc.weight"] = sd[p + "mlp.c_fc.weight"].t().contiguous()  # (C, H)
        out[h + "mlp.c_fc.bias"] = bias(p + "mlp.c_fc.bias", H)
        out[h + "mlp.c_proj.weight"] = sd[p + "mlp.c_proj.weight"].t().contiguous()  # (H, C)
        out[h + "mlp.c_proj.bias"] = bias(p + "mlp.c_proj.bias", C)
    out["lm_head.weight"] = sd["wte.weight"] if m.tie_embeddings else sd["lm_head.weight"]
    return config, out


# ---- tokenizer -------------------------------------------------------------------------------------
def _bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """``token`` split by byte-pair merges of rank < ``max_rank`` (two parts for a merged token)."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def _byte_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet: printable bytes map to themselves, the rest past U+0100."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def export_tokenizer(tokenizer, out: Path) -> list[Path]:
    """tiktoken files, and a Hugging Face tokenizer.json when the ``tokenizers`` package is present."""
    enc = tokenizer.encoding
    ranks: dict[bytes, int] = enc._mergeable_ranks  # tiktoken has no public getter for the ranks
    special = dict(enc._special_tokens)
    lines = "".join(
        f"{base64.b64encode(t).decode()} {r}\n" for t, r in sorted(ranks.items(), key=lambda kv: kv[1])
    )
    written = [atomic_write_text(out / "tokenizer.tiktoken", lines)]
    written.append(
        atomic_write_json(
            out / "tiktoken.json",
            {
                "name": enc.name,
                "pat_str": enc._pat_str,
                "mergeable_ranks": "tokenizer.tiktoken",
                "special_tokens": special,
                "fingerprint": tokenizer.fingerprint,
                "usage": "tiktoken.Encoding(name, pat_str=pat_str, special_tokens=special_tokens, "
                "mergeable_ranks=tiktoken.load.load_tiktoken_bpe('tokenizer.tiktoken'))",
            },
        )
    )
    try:
        # Hugging Face tokenizers comes with the optional hf extra
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    except ImportError:
        return written  # the tiktoken form is always there
    alphabet = _byte_to_unicode()

    def text(token: bytes) -> str:
        return "".join(alphabet[b] for b in token)

    vocab = {text(t): r for t, r in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            parts = _bpe_parts(ranks, token, rank)
            if len(parts) != 2:
                return written  # not a pure merge table (never for rustbpe / GPT-2 ranks)
            merges.append((text(parts[0]), text(parts[1])))
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(enc._pat_str), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(list(special))
    path = out / "tokenizer.json"
    atomic_write_text(path, hf.to_str())
    eot = next(iter(special), None)
    atomic_write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": eot,
            "eos_token": eot,
            "model_max_length": None,
        },
    )
    return [*written, path, out / "tokenizer_config.json"]


# ---- entry point -----------------------------------------------------------------------------------
def export_run(run, out: str | Path, fmt: str = "safetensors") -> list[Path]:
    """Write ``run`` (a ``lit_algos.inference.LoadedRun``) to ``out`` in format ``fmt``; the files written."""

    if fmt not in FORMATS:
        raise LitAlgosError(f"--format {fmt!r}: allowed are {', '.join(FORMATS)}.")
    out = Path(out)
    m = run.model.cfg
    eot = run.tokenizer.eot_token
    if fmt == "hf":
        arch = hf_architecture(m)  # refuses before anything is written
        if arch == "gpt2":
            config, tensors = _gpt2(run.model, m, eot)
        else:
            config, tensors = _llama(run.model, m, eot, arch)
    else:
        config = {"lit_algos": run.record.config, "run_id": run.record.run_id}
        tensors = dict(run.model.state_dict())
        if m.tie_embeddings:
            tensors.pop("lm_head.weight", None)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.safetensors"
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(
        {k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp), metadata={"format": "pt"}
    )
    tmp.replace(weights)  # atomic
    name = "config.json" if fmt == "hf" else "lit_algos_config.json"
    written = [weights, atomic_write_json(out / name, config)]
    if fmt == "hf":
        written.append(
            atomic_write_json(out / "generation_config.json", {"bos_token_id": eot, "eos_token_id": eot})
        )
    return written + export_tokenizer(run.tokenizer, out)
