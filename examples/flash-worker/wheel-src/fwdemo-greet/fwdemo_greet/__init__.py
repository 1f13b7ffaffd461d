"""Greetings, built on fwdemo_text."""

import sys

from fwdemo_text import shout


def greet(name):
    return shout("hello " + name)


def main():
    print(greet(sys.argv[1] if len(sys.argv) > 1 else "world"))
