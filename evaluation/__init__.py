"""Evaluation of pre-trained posmask runs and the thesis-style report.

Tasks (`posmask eval --run RUN --tasks retrieval,valse,vqa,probe`), results in `RUN/eval/<task>.json`:

- `retrieval` (+ `retrieval_metric`): zero-shot image-text retrieval, ITC for all pairs, top-k ITM re-ranking.
- `valse` (+ `valse_metric`): zero-shot VALSE with the ITM head; acc_r, p_c, p_f, acc per piece.
- `vqa` (+ `vqa_data`, `vqa_metric`): VQA v2 fine-tuning as classification, official accuracy.
- `probe` (+ `probe_perturb`): caption-perturbation probe from UPOS tags.

Report (`posmask report --runs ... --out report`): `runs` (run metadata), `report` (tables, index.md),
`plots` (figures). `common` holds the shared model/image/text plumbing; `cli_eval` and `cli_report`
are the subcommands. Heavy libraries load only inside the commands.
"""
