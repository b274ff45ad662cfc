"""Evaluation of pre-trained posmask runs and the thesis-style report.

Tasks (`posmask eval --run RUN --tasks retrieval,valse,vqa,probe`), results in `RUN/eval/<task>.json`:

- `retrieval` (+ `retrieval_metric`): zero-shot image-text retrieval, ITC for all pairs, top-k ITM re-ranking.
- `valse` (+ `valse_metric`): zero-shot VALSE with the ITM head; acc_r, p_c, p_f, acc per piece.
- `vqa` (+ `vqa_data`, `vqa_metric`): VQA v2 fine-tuning as classification, official accuracy.
- `probe` (+ `probe_perturb`, `probe_templates`): which words the model reads, from UPOS tags: the POS-swap
  profile over the 9 studied classes, replace the visual words / the others, the seed's five templates, the
  visual-word count curve; per-item scores and bootstrap intervals (`probe_report`: its tables and figures).

SCST probe (`posmask probe-scst --run RUN`): `captioner` (a 2-layer transformer decoder over the frozen features of
one fixed image encoder, `captioner_data`), trained with CE and then SCST on a run's ITM/ITC score
(`captioner_train` on the run engine, `scst_reward`, `scst_probe`), evaluated (`scst_evaluate`,
`caption_metrics`) and reported in the seed's layout (`scst_report`); the command is `cli_probe_scst`.

Report (`posmask report --runs ... --out report`): `runs` (run metadata), `report` (tables, index.md),
`plots` (figures). `common` holds the shared model/image/text plumbing; `cli_eval` and `cli_report`
are the subcommands. Heavy libraries load only inside the commands.
"""
