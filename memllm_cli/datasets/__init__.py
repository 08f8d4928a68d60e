"""The data the adapter is trained and evaluated on: readers, relation labels and splits.

Both ``memllm_cli.train`` and ``memllm_cli.eval`` read their data here, and neither
imports the other. One module per source (formats in ../shared/data/README.md):

- ``redocred``: Re-DocRED documents, detokenised, with entity mentions and labels;
- ``fewrel``: FewRel single sentences with one labelled fact each;
- ``entityquestions``: EntityQuestions questions, the subject recovered;
- ``notes``: invented first-person notes, the facts they state and questions;
- ``relations``: English labels of Wikidata relations (``label_for``);
- ``splits``: the stable train / held-out split by name (``in_validation``).
"""
