from fwdemo_text import shout


def test_shout():
    assert shout("hi") == "HI!"
