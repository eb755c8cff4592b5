"""cli/shell_quote.py writes what shlex.join writes (`cnet ps` quotes commands without shlex)."""

import random
import shlex

import pytest

from cnet.cli import shell_quote

# Every character class shlex tells apart: its safe set, ASCII punctuation it quotes, the quote
# itself, whitespace, and letters and digits outside ASCII (re's \w in ASCII mode does not take them).
POOL = "abcXYZ019_@%+=:,./-" + "'\"\\ \t\n$`!*?[]{}()<>|&;#~^" + "éßЖ٣中😀\u00a0\x00\x7f"


@pytest.mark.parametrize(
    "words",
    [
        [],
        [""],
        ["busybox", "httpd", "-f", "-p", "80", "-h", "/tmp/www"],
        ["sh", "-c", "echo 'hi there' && sleep 1"],
        ["python3", "-m", "http.server", "80"],
        ["a b", "it's", "$HOME", "é", "x=1", "user@host:/p", "100%", "--", "-"],
    ],
)
def test_known_commands(words):
    assert shell_quote.join(words) == shlex.join(words)


def test_generated_words():
    rng = random.Random(16)
    for _ in range(5000):
        words = ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 4))]
        assert shell_quote.join(words) == shlex.join(words), words


def test_a_word_shlex_quotes_is_quoted():
    """The test above can fail: one unsafe character left in the safe set shows."""
    assert shell_quote.quote("a b") == "'a b'"
    assert shell_quote.quote("é") == "'é'"
    assert shell_quote.quote("it's") == "'it'\"'\"'s'"
