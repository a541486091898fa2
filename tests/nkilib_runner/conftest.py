"""tests/nkilib_runner: the nki-library runner. nkilib_fixture/ is a miniature nki-library the runner runs in a child pytest;
it is not collected here."""

collect_ignore = ["nkilib_fixture"]
