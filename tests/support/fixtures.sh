#!/usr/bin/env bash
# The fixture repositories and TLS files, built once into $ROOT by tests/support/fixtures.rs
# (cached under the hash of this text: any change here builds them anew).
#
# basic.git: HEAD -> trunk (neither main nor master). trunk: c0 - c1 - c2 - c3 (c0 is no
# ref's tip); feature: c2 - c4;
# Release-1.0: c3 - c5; tag `light` -> c1; annotated `v1.0` -> c2; refs/pull/1/head -> c6
# (on c3, reachable from nothing else). c3 adds two blobs whose SHA-1s share `b2664c8`.
# nosha.git: the same refs with git's default upload-pack (no SHA wants).
set -euo pipefail
export GIT_AUTHOR_NAME=Fixture GIT_AUTHOR_EMAIL=fixture@example.com
export GIT_COMMITTER_NAME=Fixture GIT_COMMITTER_EMAIL=fixture@example.com
n=0
commit() { # message
  n=$((n+1))
  export GIT_AUTHOR_DATE="2024-01-01T00:00:${n}Z" GIT_COMMITTER_DATE="2024-01-01T00:00:${n}Z"
  git add -A && git commit -q -m "$1"
  echo "$1 $(git rev-parse HEAD)" >> $ROOT/shas.txt
}
W=$ROOT/work
mkdir -p $W && cd $W && git init -q -b trunk .
echo "c0" > file.txt; commit c0
echo "c1" > file.txt; echo "# basic" > README.md; commit c1
git tag light
echo "c2" > file.txt; commit c2
git tag -a v1.0 -m "release 1.0"
git checkout -q -b feature; echo "c4" > file.txt; commit c4
git checkout -q trunk
echo "c3" > file.txt; mkdir -p collide; printf 'collide 826\n' > collide/a; printf 'collide 4561\n' > collide/b; commit c3
git checkout -q -b Release-1.0; echo "c5" > file.txt; commit c5
git checkout -q --detach trunk; echo "c6" > file.txt; commit c6
git update-ref refs/pull/1/head HEAD
git checkout -q trunk
echo "v1.0-tag-object $(git rev-parse v1.0)" >> $ROOT/shas.txt
mkdir -p $ROOT/repos
git clone -q --bare --mirror $W $ROOT/repos/basic.git
git clone -q --bare --mirror $W $ROOT/repos/nosha.git
git -C $ROOT/repos/basic.git symbolic-ref HEAD refs/heads/trunk
git -C $ROOT/repos/nosha.git symbolic-ref HEAD refs/heads/trunk
for k in allowReachableSHA1InWant allowTipSHA1InWant allowAnySHA1InWant; do
  git -C $ROOT/repos/basic.git config uploadpack.$k true
done
git init -q --bare $ROOT/repos/empty.git
# Submodules: super -> libs/sub (../sub.git, recorded at s1, not sub's tip s2) -> nested
# (../nested.git). Gitlinks are written directly: no clone of a local submodule is needed.
N=$ROOT/nestedwork; mkdir -p $N && cd $N && git init -q -b main .
echo nested > nested.txt; commit n1
S=$ROOT/subwork; mkdir -p $S && cd $S && git init -q -b main .
echo sub > sub.txt
printf '[submodule "nested"]\n\tpath = nested\n\turl = ../nested.git\n' > .gitmodules
git update-index --add --cacheinfo 160000,$(git -C $N rev-parse HEAD),nested
mkdir nested  # an uninitialised submodule is an empty directory: `add -A` keeps the gitlink
commit s1
echo "sub after" > sub.txt; commit s2
P=$ROOT/superwork; mkdir -p $P && cd $P && git init -q -b main .
echo super > super.txt
printf '[submodule "libs/sub"]\n\tpath = libs/sub\n\turl = ../sub.git\n' > .gitmodules
git update-index --add --cacheinfo 160000,$(grep '^s1 ' $ROOT/shas.txt | cut -d' ' -f2),libs/sub
mkdir -p libs/sub
commit p1
B=$ROOT/brokenwork; mkdir -p $B && cd $B && git init -q -b main .
printf '[submodule "vendor/missing"]\n\tpath = vendor/missing\n\turl = ../missing.git\n' > .gitmodules
git update-index --add --cacheinfo 160000,$(grep '^n1 ' $ROOT/shas.txt | cut -d' ' -f2),vendor/missing
mkdir -p vendor/missing; commit b1
git clone -q --bare $B $ROOT/repos/broken-super.git
rm -rf $B
G=$ROOT/bigwork; mkdir -p $G && cd $G && git init -q -b main .
head -c 400000 /dev/urandom > blob.bin; commit g1
git clone -q --bare $G $ROOT/repos/big.git; rm -rf $G
git clone -q --bare $N $ROOT/repos/nested.git
git clone -q --bare $S $ROOT/repos/sub.git
git -C $ROOT/repos/sub.git config uploadpack.allowReachableSHA1InWant true
git clone -q --bare $P $ROOT/repos/super.git
rm -rf $N $S $P
D=$ROOT/deepwork; mkdir -p $D && cd $D && git init -q -b main .
for i in $(seq 0 39); do echo "deep $i" > deep.txt; commit "deep$i"; done
git clone -q --bare $D $ROOT/repos/deep.git
# wide.git: enough files for the parallel fresh checkout, with what it must get right: an
# executable, a symlink, an empty file, a name with a space and UTF-8, a submodule directory;
# branch attrs adds a .gitattributes that converts line ends (libgit2's checkout handles it).
X=$ROOT/widework; mkdir -p $X && cd $X && git init -q -b main .
for i in $(seq 1 150); do mkdir -p "d$((i % 7))/e$((i % 3))"; echo "file $i" > "d$((i % 7))/e$((i % 3))/f$i.txt"; done
printf '#!/bin/sh\necho hi\n' > run.sh; chmod +x run.sh
ln -s d1/e1/f1.txt link-to-f1
: > empty.txt
echo spaced > "with space é.txt"
printf '[submodule "nested"]\n\tpath = nested\n\turl = ../nested.git\n' > .gitmodules
git update-index --add --cacheinfo 160000,$(grep '^n1 ' $ROOT/shas.txt | cut -d' ' -f2),nested
mkdir nested
commit w1
git checkout -q -b attrs; echo '*.txt text eol=crlf' > .gitattributes; commit w2
git checkout -q main
git clone -q --bare $X $ROOT/repos/wide.git; rm -rf $X
# zeros.git: a small pack (zeros compress) that checks out a 300 kB file, among enough others
# for the parallel checkout: a file-size limit hits the checkout, not the fetch.
Z=$ROOT/zeroswork; mkdir -p $Z && cd $Z && git init -q -b main .
for i in $(seq 1 70); do echo "small $i" > "s$i.txt"; done
head -c 300000 /dev/zero > zeros.bin; commit z1
git clone -q --bare $Z $ROOT/repos/zeros.git; rm -rf $Z
# many.git: 4,084 objects at full depth (over git::indexer's SMALL_PACK, so gix-pack indexes a
# fresh full clone), 2,042 at depth 1 (libgit2 indexes it); two commits, the second changing the
# last line of every file (deltas); ~500 kB of pack, past the stall tests' 120 kB cut.
git init -q --bare -b main $ROOT/repos/many.git
awk 'BEGIN { srand(7)
  for (c = 1; c <= 2; c++) {
    printf "commit refs/heads/main\ncommitter T <t@example.com> %d +0000\ndata 2\nm%d\n", 1700000000 + c, c
    for (i = 0; i < 2000; i++) {
      if (c == 1) { body[i] = ""; for (l = 0; l < 4; l++) body[i] = body[i] sprintf("%08x%08x%08x%08x\n", rand() * 4294967295, rand() * 4294967295, rand() * 4294967295, rand() * 4294967295) }
      text = body[i] "rev " c "\n"
      printf "M 100644 inline m%02d/f%04d.txt\ndata %d\n%s\n", i % 40, i, length(text), text
    }
  }
}' | git -C $ROOT/repos/many.git fast-import --quiet
git -C $ROOT/repos/many.git repack -adq
for r in $ROOT/repos/*.git; do git -C $r config http.receivepack false; git -C $r update-server-info; done
rm -rf $W $D
# A CA, a server certificate it signs (for 127.0.0.1 and localhost), and an unrelated CA.
cd $ROOT && mkdir -p tls && cd tls
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gitinit test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=other CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout other.key -out other-ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf -out server.pem 2>/dev/null
cat server.pem server.key > server-bundle.pem
