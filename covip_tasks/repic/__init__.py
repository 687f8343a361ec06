"""RePIC's personalized-captioning protocol (arXiv 2506.18369; docs/protocol.md §7.2).

- `scoring`: name precision / recall / F1 exactly as RePIC's evaluation scripts compute them (the `repic`
  preset), and the corrected metric that matches the display names the model was shown.
- `formats`: RePIC's concept database (`database_mod.json`), query files and caption files, validated.
- `dataset`: the importer of a RePIC data directory, and where the `repic_*` tasks look for it.
- `retrieval`: the retrieval setting's default retriever (ours: RePIC's detector and CLIP weights are not here).
- `prompt`: RePIC's captioning prompt, and its inverse for the offline baselines.
- `fixture`: a small drawn database in RePIC's layout, for tests and for trying the tasks without RePIC's data.
"""
