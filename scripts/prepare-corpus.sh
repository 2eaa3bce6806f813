#!/usr/bin/env bash
# Builds a local long-document corpus in PG19's layout from Debian packages:
#   OUT/train/*.txt|*.tex and OUT/validation/*.txt|*.tex
# - the King James Bible (bible-kjv), one document per book;
# - the LaTeX sources shipped in texlive *-doc packages, the stand-in for Arxiv-math.
# Every 11th Bible book and every 20th TeX file (in sorted order) is held out for validation.
# TeX files that are not UTF-8 or are under 1 KB are skipped. The output is the same on every run.
#
#   bash scripts/prepare-corpus.sh [OUT]     (default OUT: data/corpus in the checkout)
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/../data/corpus}")
marker=.infini-corpus  # marks a folder this script wrote, the only kind it will replace
if [ -e "$out" ] && [ ! -e "$out/$marker" ]; then
  echo "prepare-corpus: $out exists and was not written by this script; remove it or choose another OUT" >&2
  exit 1
fi
tex_packages="texlive-latex-base-doc texlive-latex-recommended-doc texlive-science-doc"

missing=()
for p in bible-kjv $tex_packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "prepare-corpus: installing ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.partial.XXXXXX")  # next to OUT, so the final swap is two renames
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/train" "$tmp/validation"

# The Bible: one "Book chapter:verse text" line per verse; each book becomes a document with its
# chapters as headings.
bible -f Gen1:1-Rev22:21 | perl -ne '
  BEGIN { $dir = shift @ARGV }
  next unless /^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$/;
  if ($1 ne $book) {
    $book = $1; $chapter = ""; $n++;
    $split = ($n % 11 == 6) ? "validation" : "train";
    open($fh, ">", sprintf("%s/%s/kjv-%02d-%s.txt", $dir, $split, $n, $book)) or die "$!";
  }
  if ($2 ne $chapter) { print $fh ($2 == 1 ? "" : "\n"), "Chapter $2\n\n"; $chapter = $2 }
  print $fh "$3 $4\n";
' "$tmp"

# TeX: plain and gzipped .tex files under the texlive doc folders.
i=0
for p in $tex_packages; do dpkg -L "$p"; done | grep -E '\.tex(\.gz)?$' | sort -u | while read -r f; do
  [ -f "$f" ] || continue
  name=$(echo "${f#/usr/share/doc/}" | sed -e 's/\.gz$//' -e 's|/|__|g')
  [ -e "$tmp/train/$name" ] || [ -e "$tmp/validation/$name" ] && continue  # x.tex and x.tex.gz: keep one
  if [[ $f == *.gz ]]; then zcat "$f" >"$tmp/one.tex"; else cp "$f" "$tmp/one.tex"; fi
  [ "$(stat -c %s "$tmp/one.tex")" -ge 1024 ] || continue
  iconv -f UTF-8 -t UTF-8 "$tmp/one.tex" >/dev/null 2>&1 || continue
  i=$((i + 1))
  if ((i % 20 == 0)); then mv "$tmp/one.tex" "$tmp/validation/$name"; else mv "$tmp/one.tex" "$tmp/train/$name"; fi
done

rm -f "$tmp/one.tex"
touch "$tmp/$marker"
chmod 755 "$tmp"
if [ -e "$out" ]; then mv "$out" "$tmp.old"; fi
mv "$tmp" "$out"
trap - EXIT
rm -rf "$tmp.old"
for split in train validation; do
  printf 'prepare-corpus: %-10s %4d documents, %s bytes\n' "$split" "$(ls "$out/$split" | wc -l)" \
    "$(du -sb "$out/$split" | cut -f1)" >&2
done
