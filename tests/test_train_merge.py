"""`taskgrove merge`: the merged adapter equals PEFT's own add_weighted_adapter result on tiny weights."""

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from taskgrove.cli import main  # noqa: E402
from taskgrove.errors import ConfigError  # noqa: E402
from taskgrove.train.merge import MERGE_FILE, merge_adapters  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random Llama (hidden 16, 2 layers) with a tokenizer, and two rank-4 LoRA adapters on it."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    root = tmp_path_factory.mktemp("tiny")
    base = root / "base"
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(base)
    vocab = {"<unk>": 0, **{f"w{i}": i + 1 for i in range(31)}}
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")), unk_token="<unk>", eos_token="<unk>"
    )
    tokenizer.save_pretrained(base)
    adapters = []
    for i in range(2):
        torch.manual_seed(10 + i)
        model = transformers.AutoModelForCausalLM.from_pretrained(base)
        lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        peft_model = peft.get_peft_model(model, lora)
        path = root / f"adapter{i}"
        peft_model.save_pretrained(path)
        adapters.append(path)
    return base, adapters


def peft_reference(base, adapters, method, weights, density=None):
    """PEFT's own merge, computed here: the merged adapter's state dict."""
    model = transformers.AutoModelForCausalLM.from_pretrained(base)
    peft_model = peft.PeftModel.from_pretrained(model, str(adapters[0]), adapter_name="x0")
    peft_model.load_adapter(str(adapters[1]), adapter_name="x1")
    torch.manual_seed(0)  # dare_ties drops at random; merge_adapters seeds torch with its seed (0)
    peft_model.add_weighted_adapter(["x0", "x1"], weights, "merged", combination_type=method, density=density)
    return peft.get_peft_model_state_dict(peft_model, adapter_name="merged")


@pytest.mark.parametrize(
    ("method", "weights", "density"),
    [
        ("linear", [0.7, 0.3], None),
        ("ties", [1.0, 1.0], 0.5),
        ("dare_ties", [1.0, 1.0], 0.5),
        ("svd", [0.5, 0.5], None),
    ],
)
def test_merged_adapter_equals_peft_result(tiny, tmp_path, method, weights, density):
    base, adapters = tiny
    out = merge_adapters(adapters, method, tmp_path / "merged", weights=weights, density=density)
    saved = safetensors_torch.load_file(str(out / "adapter_model.safetensors"))
    expected = peft_reference(base, adapters, method, weights, density)
    assert set(saved) == set(expected) and len(saved) == 8  # 2 layers x (q, v) x (A, B)
    for key, tensor in expected.items():
        torch.testing.assert_close(saved[key], tensor, rtol=0, atol=0)
    # not a copy of either input: the merge changed the weights
    first = safetensors_torch.load_file(str(adapters[0] / "adapter_model.safetensors"))
    assert any(not torch.equal(saved[k], first[k]) for k in saved)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base)
    record = json.loads((out / MERGE_FILE).read_text())
    assert record["method"] == method and record["weights"] == weights and record["density"] == density


def test_merged_adapter_loads_like_any_adapter(tiny, tmp_path):
    from taskgrove.models.loading import load_local
    from taskgrove.models.paths import cache_root

    base, adapters = tiny
    out = tmp_path / "merged"
    assert main(["merge", "--adapters", *map(str, adapters), "--method", "ties", "-o", str(out)]) == 0
    record = json.loads((out / MERGE_FILE).read_text())
    assert record["weights"] == [1.0, 1.0] and record["density"] == 0.5
    loaded = load_local(str(out), None, cache_root(tmp_path / "cache"))
    plain = transformers.AutoModelForCausalLM.from_pretrained(base)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert not torch.allclose(loaded.model(ids).logits, plain(ids).logits)


def test_usage_errors_create_nothing(tiny, tmp_path, capsys):
    _, adapters = tiny
    out = tmp_path / "merged"
    cases = [
        ["--adapters", str(adapters[0]), "--method", "linear"],
        ["--adapters", *map(str, adapters), "--method", "linear", "--weights", "1"],
        ["--adapters", *map(str, adapters), "--method", "linear", "--density", "0.5"],
        ["--adapters", *map(str, adapters), "--method", "ties", "--density", "0"],
        ["--adapters", str(adapters[0]), str(tmp_path), "--method", "linear"],
    ]
    for argv in cases:
        assert main(["merge", *argv, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
        assert not out.exists()
    with pytest.raises(ConfigError, match="not empty"):
        merge_adapters(adapters, "linear", adapters[0])


def test_train_compare_merged_entry_reuses_and_redoes(tiny, tmp_path):
    from taskgrove.train.evaluate import ModelEntry
    from taskgrove.train.merge import merged_entry

    _, adapters = tiny
    singles = []
    for i, adapter in enumerate(adapters):  # copies, so that one can be "retrained" below
        copy = tmp_path / f"single_t{i}_LoRA_4"
        shutil.copytree(adapter, copy)
        singles.append(ModelEntry(copy.name, "single", copy, str(tiny[0]), "LoRA_4", [f"g/t{i}"]))
    entry = merged_entry(singles, "ties", tmp_path, "LoRA_4")
    assert (entry.label, entry.kind, entry.config, entry.trained_on) == (
        "merged_ties_LoRA_4",
        "merged",
        "LoRA_4",
        ["g/t0", "g/t1"],
    )
    weights = entry.path / "adapter_model.safetensors"
    first = safetensors_torch.load_file(str(weights))
    stamp = weights.stat().st_mtime_ns
    assert merged_entry(singles, "ties", tmp_path, "LoRA_4").path == entry.path
    assert weights.stat().st_mtime_ns == stamp  # same adapters: reused, not merged again
    retrained = {
        k: v * 2 for k, v in safetensors_torch.load_file(str(singles[1].path / "adapter_model.safetensors")).items()
    }
    safetensors_torch.save_file(retrained, str(singles[1].path / "adapter_model.safetensors"))
    merged_entry(singles, "ties", tmp_path, "LoRA_4")
    again = safetensors_torch.load_file(str(weights))
    assert any(not torch.equal(again[k], first[k]) for k in first)  # a changed adapter: merged again
    with pytest.raises(ConfigError, match="not adapters: base"):
        merged_entry([ModelEntry("base", "base", None)], "ties", tmp_path, "LoRA_4")
    (tmp_path / "merged_linear_LoRA_4").mkdir()
    (tmp_path / "merged_linear_LoRA_4" / "x").write_text("mine")
    with pytest.raises(ConfigError, match="not a merged adapter"):
        merged_entry(singles, "linear", tmp_path, "LoRA_4")


def test_train_compare_merge_needs_lora_and_fails_before_training(tmp_path, capsys):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "train" / "tasks.py"
    out = tmp_path / "out"
    argv = ["train-compare", "--include-path", str(fixtures), "--tasks", "trainfix/similar", "--config-index", "0"]
    assert main([*argv, "--output-dir", str(out), "--merge", "ties"]) == 2
    err = capsys.readouterr().err
    assert "merges LoRA adapters" in err and err.count("\n") == 1
    assert not out.exists()
