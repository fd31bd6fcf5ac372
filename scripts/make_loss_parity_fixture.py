#!/usr/bin/env python3
"""Ten training steps of all-MiniLM-L6-v2 with PyTorch and sentence-transformers, for the
loss-parity test in crates/polydense-train/tests/real_model.rs.

Writes tests/fixtures/loss_parity/reference.json: the training pairs (file order = batch
order), the settings, and the loss of each of the ten steps, each computed before its
update. The recipe is the one polydense's trainer runs with `sampler = "sequential"`,
`negatives = 0`: batches of 4 (query, positive) pairs, in-batch negatives only, the
cross-entropy over scores scaled by 1/τ = 10 (sentence-transformers'
MultipleNegativesRankingLoss with scale 10; τ 0.1 keeps the losses of these easy batches well
above zero), AdamW (β 0.9/0.999, ε 1e-8, weight decay 0.01 on every weight but biases and
LayerNorms), a linear decay of the learning rate from 2e-5 to 0 over ten steps, gradient norm
clipped to 1. Dropout is off (the model stays in eval mode): polydense's
encoder has none, and the comparison must be deterministic.

Needs: a Python with torch and sentence-transformers (bench/ and scripts/ use
$POLYDENSE_HOME/venv-model). Runs offline (HF_HUB_OFFLINE=1).
Usage: scripts/make_loss_parity_fixture.py [MODEL_DIR]
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import sentence_transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("POLYDENSE_HOME", Path.home() / ".cache" / "polydense"))
MODEL = Path(sys.argv[1]) if len(sys.argv) > 1 else HOME / "models" / "minilm-l6"
OUT = ROOT / "tests" / "fixtures" / "loss_parity" / "reference.json"

# Ten themes of four: each batch is one theme, so its in-batch negatives are close to the
# positive and the losses are far from zero.
TOPICS = [
    ("the Nile", "The Nile flows north through eleven countries to the Mediterranean Sea."),
    ("the Amazon", "The Amazon carries more water than any other river, east to the Atlantic."),
    ("the Danube", "The Danube flows east through ten countries into the Black Sea."),
    ("the Mississippi", "The Mississippi runs south through the United States to the Gulf of Mexico."),
    ("the violin", "The violin has four strings tuned in fifths and is played with a bow."),
    ("the cello", "The cello is a large bowed string instrument played sitting down."),
    ("the guitar", "The guitar has six strings that are plucked or strummed with the fingers."),
    ("the harp", "The harp has dozens of strings stretched across a tall triangular frame."),
    ("Mars", "Mars is a cold rocky planet with red dust and two small moons."),
    ("Venus", "Venus is a rocky planet hidden under thick clouds of sulphuric acid."),
    ("Jupiter", "Jupiter is the largest planet, a gas giant with a great red storm."),
    ("Saturn", "Saturn is a gas giant whose rings are made mostly of ice and rock."),
    ("bread", "Bread is baked from flour, water, salt and yeast, then left to rise."),
    ("cheese", "Cheese is made by curdling milk and pressing and ageing the curds."),
    ("butter", "Butter is made by churning cream until the fat separates from the buttermilk."),
    ("yogurt", "Yogurt is milk fermented by bacteria that turn its sugar into acid."),
    ("owls", "Owls hunt small animals at night and fly almost without a sound."),
    ("eagles", "Eagles are large birds of prey that hunt by day with very sharp eyes."),
    ("penguins", "Penguins cannot fly but swim fast, using their wings as flippers."),
    ("parrots", "Parrots are bright tropical birds that can copy human speech."),
    ("steam trains", "Steam locomotives burned coal to boil water and drive their pistons."),
    ("electric trains", "Electric trains draw power from overhead wires or a third rail."),
    ("diesel trains", "Diesel locomotives use an engine to turn a generator that drives the wheels."),
    ("maglev trains", "Maglev trains float above the track on magnets and reach great speeds."),
    ("earthquakes", "Earthquakes happen when tectonic plates slip suddenly along a fault."),
    ("volcanoes", "Volcanoes erupt when molten rock rises through cracks in the crust."),
    ("tsunamis", "Tsunamis are huge sea waves set off by undersea earthquakes."),
    ("landslides", "Landslides happen when soil and rock slide down a steep slope after rain."),
    ("copper", "Copper conducts electricity well, which is why it is used in wiring."),
    ("iron", "Iron is a strong metal that rusts when it meets water and air."),
    ("gold", "Gold is a soft yellow metal that never rusts and is used in jewellery."),
    ("aluminium", "Aluminium is a light metal used in aircraft and drink cans."),
    ("tea", "Tea is brewed from the dried leaves of the Camellia sinensis plant."),
    ("coffee", "Coffee is brewed from roasted seeds of the coffee plant."),
    ("cocoa", "Cocoa is made from fermented, roasted beans of the cacao tree."),
    ("mate", "Mate is a South American drink brewed from the leaves of a holly."),
    ("chess", "Chess is played on a board of sixty-four squares by two players."),
    ("go", "Go is played by placing black and white stones on a grid of lines."),
    ("checkers", "Checkers is played by jumping diagonally over the opponent's pieces."),
    ("backgammon", "Backgammon is a race game played with dice and fifteen pieces each."),
]
# Each question is answered by its passage without naming the topic.
QUESTIONS = [
    "Which river reaches the Mediterranean?",
    "Which river carries the most water?",
    "Which river ends in the Black Sea?",
    "Which river ends in the Gulf of Mexico?",
    "Which instrument is tuned in fifths?",
    "Which instrument is played sitting down?",
    "Which instrument is strummed?",
    "Which instrument has a triangular frame?",
    "Which planet has two small moons?",
    "Which planet has acid clouds?",
    "Which planet has a great storm?",
    "Which planet has rings?",
    "What needs yeast to rise?",
    "What is made from curds?",
    "What is churned from cream?",
    "What is fermented by bacteria?",
    "Which bird hunts at night?",
    "Which bird has sharp eyes?",
    "Which bird swims with flippers?",
    "Which bird can copy speech?",
    "Which train burns coal?",
    "Which train uses overhead wires?",
    "Which engine turns a generator?",
    "Which train floats on magnets?",
    "What happens when plates slip?",
    "What erupts molten rock?",
    "What is a giant sea wave?",
    "What slides down slopes after rain?",
    "Which metal is used in wiring?",
    "Which metal rusts?",
    "Which metal is used in jewellery?",
    "Which metal is used in cans?",
    "Which drink comes from Camellia leaves?",
    "Which drink comes from roasted seeds?",
    "What comes from cacao beans?",
    "Which drink is made from holly leaves?",
    "Which game has sixty-four squares?",
    "Which game uses black and white stones?",
    "Which game has diagonal jumps?",
    "Which race game uses dice?",
]

BATCH, STEPS, LR, TAU, DECAY, MAX_LEN = 4, 10, 2e-5, 0.1, 0.01, 128


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    pairs = [(q, p) for q, (_, p) in zip(QUESTIONS, TOPICS)]
    assert len(pairs) == BATCH * STEPS
    model = SentenceTransformer(str(MODEL), device="cpu")
    model.max_seq_length = MAX_LEN
    model.eval()  # no dropout: polydense's encoder has none
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith(".bias") or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LR, betas=(0.9, 0.999), eps=1e-8,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (STEPS - s) / STEPS))

    def embed(texts):
        features = model.tokenize(texts)
        return model(features)["sentence_embedding"]

    losses = []
    for step in range(STEPS):
        batch = pairs[step * BATCH:(step + 1) * BATCH]
        q = embed([x[0] for x in batch])
        p = embed([x[1] for x in batch])
        scores = q @ p.T / TAU
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        print(f"step {step + 1}: loss {loss.item():.6f}", file=sys.stderr)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "made_by": "scripts/make_loss_parity_fixture.py",
        "versions": {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__},
        "settings": {"batch_size": BATCH, "steps": STEPS, "lr": LR, "temperature": TAU,
                     "weight_decay": DECAY, "max_grad_norm": 1.0, "max_length": MAX_LEN,
                     "warmup_steps": 0},
        "pairs": [{"query": q, "positive": p} for q, p in pairs],
        "losses": losses,
    }, indent=1) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
