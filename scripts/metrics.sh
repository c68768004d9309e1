#!/usr/bin/env bash
# Prints the structure figures we track for the product code (protocol/ policy/ auth/ proxy/ tools/
# .c files): function count, cyclomatic complexity (pmccabe's traditional McCabe, column 2), function
# and file lengths, the file-level call loops among proxy/*.c, and a hint list of proxy/ code that
# writes or indexes message bytes by hand (STYLE.md: proxy/ never does). Reads the sources only;
# needs bash, awk, coreutils and pmccabe. Thresholds are STYLE.md's: 80 lines per function, 800 per file.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v pmccabe >/dev/null || { echo "metrics: pmccabe is not installed (apt-get install pmccabe)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
src=(protocol/*.c policy/*.c auth/*.c proxy/*.c tools/*.c)
proxy=(proxy/*.c)

# pmccabe columns: 1 modified McCabe, 2 traditional McCabe, 3 statements, 4 first line,
# 5 lines, 6 "file(line): name".
pmccabe "${src[@]}" > "$tmp/pm"

echo "== Functions (${#src[@]} files: protocol/ policy/ auth/ proxy/ tools/)"
awk -F'\t' '{ print $2 }' "$tmp/pm" | sort -n > "$tmp/cc"
awk '
    { v[NR] = $1 }
    END {
        if (NR == 0) { print "no functions found"; exit }
        med = v[int((NR + 1) / 2)]            # nearest rank
        p90 = v[int(NR * 0.9 + 0.999999)]
        over8 = over10 = 0
        for (i = 1; i <= NR; i++) { if (v[i] > 8) over8++; if (v[i] > 10) over10++ }
        printf "functions:                  %d\n", NR
        printf "complexity median/p90/max:  %d / %d / %d\n", med, p90, v[NR]
        printf "complexity over 8:          %d\n", over8
        printf "complexity over 10:         %d\n", over10
    }' "$tmp/cc"

echo
echo "-- Complexity over 10 (complexity, lines, function)"
awk -F'\t' '$2 > 10 { sub(/\([0-9]+\):/, ":", $6); printf "%4d %5d  %s\n", $2, $5, $6 }' "$tmp/pm" | sort -k1,1nr -k2,2nr

echo
echo "-- Longest functions (lines, complexity, function)"
awk -F'\t' '{ sub(/\([0-9]+\):/, ":", $6); printf "%5d %4d  %s\n", $5, $2, $6 }' "$tmp/pm" | sort -k1,1nr -k2,2nr | head -10
awk -F'\t' '$5 > 80 { n++ } END { printf "functions over 80 lines:    %d\n", n + 0 }' "$tmp/pm"

echo
echo "== Files"
wc -l "${src[@]}" | awk '$2 != "total"' | sort -k1,1nr > "$tmp/wc"
awk '
    NR == 1 { printf "lines per file, max:        %d (%s)\n", $1, $2 }
    $1 > 800 { over[++n] = $0 }
    END {
        printf "files over 800 lines:       %d\n", n
        for (i = 1; i <= n; i++) printf "  %s\n", over[i]
    }' "$tmp/wc"

# Comments removed, line breaks kept; with strip_strings=1 string and character literals are
# emptied too. One awk state machine for both uses, so a "/*" inside a string is not a comment.
strip() {
    awk -v strip_strings="$1" '
    FNR == 1 { inblock = 0 }
    {
        line = $0; out = ""; n = length(line); i = 1; instr = 0
        while (i <= n) {
            c = substr(line, i, 1); d = substr(line, i, 2)
            if (inblock) {
                if (d == "*/") { inblock = 0; i += 2; out = out " " } else i++
                continue
            }
            if (instr) {
                if (c == "\\") { if (!strip_strings) out = out d; i += 2; continue }
                if (c == q) { instr = 0; out = out q } else if (!strip_strings) out = out c
                i++
                continue
            }
            if (d == "/*") { inblock = 1; i += 2; continue }
            if (d == "//") break
            if (c == "\"" || c == "'\''") { instr = 1; q = c }
            out = out c; i++
        }
        print out
    }' "$2"
}

echo
echo "== File-level call loops in proxy/"
echo "(edge A -> B: A names a non-static function defined in B, as a call or as a callback value)"
# Non-static functions per proxy/ file: pmccabe gives each definition's first line.
: > "$tmp/defs"
for f in "${proxy[@]}"; do
    pmccabe "$f" | awk -F'\t' -v f="$f" '
        FILENAME == "-" { split($6, a, ": "); line[$4] = a[2]; next }
        FNR in line && $0 !~ /^static/ { print f, line[FNR] }' - "$f" >> "$tmp/defs"
done
# Identifiers used per file, outside comments and literals.
: > "$tmp/uses"
for f in "${proxy[@]}"; do
    strip 1 "$f" | awk -v f="$f" '{ gsub(/[^A-Za-z0-9_]+/, " "); for (i = 1; i <= NF; i++) if (!seen[$i]++) print f, $i }' >> "$tmp/uses"
done
awk '
    FILENAME == ARGV[1] { owner[$2] = $1; next }
    ($2 in owner) && owner[$2] != $1 { print $1, owner[$2], $2 }' "$tmp/defs" "$tmp/uses" | sort > "$tmp/edges"
# Strongly connected components: transitive closure (Floyd-Warshall; a few dozen files), then
# files that reach each other.
awk '
    FILENAME == ARGV[1] { id[$1] = ++n; name[n] = $1; next }
    { r[id[$1], id[$2]] = 1
      k = $1 " -> " $2; via[k] = via[k] (via[k] == "" ? "" : ", ") $3; cnt[k]++ }
    END {
        for (k = 1; k <= n; k++) for (i = 1; i <= n; i++) if (r[i, k]) for (j = 1; j <= n; j++) if (r[k, j]) r[i, j] = 1
        found = 0
        for (i = 1; i <= n; i++) {
            if (done[i]) continue
            m = 0; members = ""
            for (j = 1; j <= n; j++) if (j == i || (r[i, j] && r[j, i])) { comp[++m] = j; done[j] = 1 }
            if (m < 2) continue
            found++
            for (a = 1; a <= m; a++) members = members (a > 1 ? " " : "") name[comp[a]]
            printf "SCC %d (%d files): %s\n", found, m, members
            for (a = 1; a <= m; a++) for (b = 1; b <= m; b++) {
                k = name[comp[a]] " -> " name[comp[b]]
                if (k in via) {
                    v = via[k]; if (length(v) > 80) v = substr(v, 1, 77) "..."
                    printf "    %-34s %2d: %s\n", k, cnt[k], v
                }
            }
        }
        if (!found) print "none: the proxy/ file graph has no loops"
    }' <(awk '{ print $1; print $2 }' "$tmp/edges" | sort -u) "$tmp/edges"

echo
echo "== Hints: proxy/ code that writes or indexes message bytes by hand"
echo "(STYLE.md: typed fe_/be_/error_ writers and readers only; check each line, some may be fine)"
for f in "${proxy[@]}"; do
    strip 0 "$f" | awk -v f="$f" '
        function hit(what) { printf "  %s:%d: [%s] %s\n", f, FNR, what, text; n++ }
        {
            text = $0; gsub(/^[ \t]+/, "", text); if (length(text) > 90) text = substr(text, 1, 87) "..."
            decl = $0 ~ /^[ \t]*(static +)?(const +)?(char|uint8_t|unsigned char) /
            if ($0 ~ /wr_u8\([^,]*, *(FE_|BE_)/)
                hit("type byte")
            else if ($0 ~ /wr_(u32|i32)\(.*(\+|sizeof|strlen|len)/)
                hit("length by hand")
            else if ($0 ~ /wr_(begin|u8|u16|u32|i32|cstr|cstrn|bytes|end)\(/)
                hit("field by field")
            else if ($0 ~ /\{ *(FE_|BE_)[A-Z_]+ *,/ || $0 ~ /\{ *'\''[A-Za-z0-9]'\'' *, *0 *,/)
                hit("literal message bytes")
            else if ($0 ~ /iobuf_head\([^)]*\)\[/ || (!decl && $0 ~ /(^|[^A-Za-z0-9_])(msg|body|hdr|head)\[[0-9]+\]/))
                hit("indexes message bytes")
            else if ($0 ~ /\+ *MSG_HEADER_LEN|MSG_HEADER_LEN *\+/)
                hit("offset by hand")
        }
        END { if (n) printf "%s: %d\n", f, n }' > "$tmp/hint"
    # The per-file count first, then its lines.
    if [ -s "$tmp/hint" ]; then tail -1 "$tmp/hint"; sed '$d' "$tmp/hint"; fi
done
