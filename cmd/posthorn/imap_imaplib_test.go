package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const imaplibScript = `
import imaplib, json, re, ssl, sys
host, port, mode, user, password, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
appended, scratch = sys.argv[7].encode(), sys.argv[8].encode()
imaplib.Debug = 4  # the transcript goes to stderr, shown when the test fails
res = {}

def ctx():
    c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
    return c

def ok(r, what):
    typ, data = r
    if typ != 'OK':
        raise SystemExit('%s: %s %r' % (what, typ, data))
    return data

# A small reader of IMAP response data: imaplib hands literals as
# (prefix, bytes) tuples, the rest as bytes.
def lex(b, out):
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c in b' \r\n':
            i += 1
        elif c in b'()':
            out.append(chr(c)); i += 1
        elif c == 0x22:
            i += 1; s = bytearray()
            while b[i] != 0x22:
                if b[i] == 0x5c:
                    i += 1
                s.append(b[i]); i += 1
            i += 1; out.append(('s', bytes(s)))
        elif c == 0x7b:  # {N}: the literal follows as its own item
            i = b.index(b'}', i) + 1
        else:
            j, depth = i, 0
            while j < n and (depth or b[j] not in b' ()\r\n'):
                if b[j] == 0x5b: depth += 1
                elif b[j] == 0x5d: depth -= 1
                j += 1
            out.append(('a', b[i:j])); i = j

def tree(data):
    toks = []
    for item in data:
        if isinstance(item, tuple):
            lex(item[0], toks); toks.append(('l', item[1]))
        elif item is not None:
            lex(item, toks)
    pos = 0
    def value():
        nonlocal pos
        t = toks[pos]; pos += 1
        if t == '(':
            l = []
            while toks[pos] != ')':
                l.append(value())
            pos += 1
            return l
        kind, v = t
        if kind == 'a':
            return None if v.upper() == b'NIL' else v.decode()
        if kind == 's':
            return v.decode('utf-8', 'replace')
        return v
    vals = []
    while pos < len(toks):
        vals.append(value())
    return vals

def fetched(data):
    vals = tree(data)
    msgs = {}
    for i in range(0, len(vals), 2):
        d = msgs.setdefault(int(vals[i]), {})
        kv = vals[i + 1]
        for k in range(0, len(kv), 2):
            d[kv[k].upper()] = kv[k + 1]
    return msgs

def fetch(seq, items, uid=False):
    r = M.uid('FETCH', seq, items) if uid else M.fetch(seq, items)
    return fetched(ok(r, 'FETCH %s %s' % (seq, items)))

def search(*crit, uid=False):
    r = M.uid('SEARCH', *crit) if uid else M.search(None, *crit)
    data = ok(r, 'SEARCH %s' % (crit,))
    return [int(x) for x in b' '.join(d for d in data if d).split()]

def caps():
    data = ok(M.capability(), 'CAPABILITY')
    return sorted(set(data[0].decode().upper().split()))

list_re = re.compile(r'^\((.*?)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$')
def listed(data):
    entries = []
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            d = d[0] + d[1]
        m = list_re.match(d.decode())
        if not m:
            raise SystemExit('LIST response not understood: %r' % d)
        name = m.group(3)
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace('\\\\', '\\')
        entries.append({'attrs': m.group(1).split(), 'delim': m.group(2).strip('"'), 'name': name})
    return entries

def code(data, name):
    for d in data:
        if isinstance(d, bytes):
            m = re.search(r'\[' + name + r' ([^\]]*)\]', d.decode())
            if m:
                return m.group(1).split()
    return None

if mode == 'ssl':
    M = imaplib.IMAP4_SSL(host, port, ssl_context=ctx(), timeout=30)
else:
    M = imaplib.IMAP4(host, port, timeout=30)
    if mode == 'starttls':
        res['caps_before_tls'] = caps()
        ok(M.starttls(ssl_context=ctx()), 'STARTTLS')
res['caps_before_login'] = caps()
ok(M.login(user, password), 'LOGIN')
res['caps'] = caps()

res['list'] = listed(ok(M.list(), 'LIST'))
typ, data = M._simple_command('LIST', '""', '*', 'RETURN', '(SPECIAL-USE)')
ok((typ, data), 'LIST RETURN (SPECIAL-USE)')
res['list_return_special'] = listed(M._untagged_response(typ, data, 'LIST')[1])
typ, data = M._simple_command('LIST', '(SPECIAL-USE)', '""', '*')
ok((typ, data), 'LIST (SPECIAL-USE)')
res['list_select_special'] = listed(M._untagged_response(typ, data, 'LIST')[1])

ok(M.create('Work'), 'CREATE Work')
data = ok(M.append('Work', '(\\Seen)', '"01-Feb-2024 10:11:12 +0100"', appended), 'APPEND')
res['appenduid'] = code(data, 'APPENDUID')

res['select_inbox'] = int(ok(M.select('INBOX'), 'SELECT INBOX')[0])
res['uidvalidity'] = int(M.response('UIDVALIDITY')[1][0])
res['search'] = {
    'ALL': search('ALL'),
    'SUBJECT hello': search('SUBJECT', '"hello"'),
    'FROM carol': search('FROM', 'carol'),
    'UNSEEN': search('UNSEEN'),
    'BODY attachment': search('BODY', 'attachment'),
    'HEADER Message-ID': search('HEADER', 'Message-ID', '"<multi-2@remote.example>"'),
    'UID ALL': search('ALL', uid=True),
}

for seq in (1, 2):
    d = fetch(str(seq), '(BODY.PEEK[])')[seq]
    open('%s/inbox-peek-%d.eml' % (out, seq), 'wb').write(d['BODY[]'])
d = fetch('1', '(BODY.PEEK[HEADER] BODY.PEEK[TEXT])')[1]
open(out + '/inbox-header-1.eml', 'wb').write(d['BODY[HEADER]'])
open(out + '/inbox-text-1.eml', 'wb').write(d['BODY[TEXT]'])
d = fetch('2', '(BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME])')[2]
for k in ('1', '2', '2.MIME'):
    open('%s/inbox-part-2-%s.eml' % (out, k), 'wb').write(d['BODY[%s]' % k])
res['unseen_after_peek'] = search('UNSEEN')
d = fetch('1', '(RFC822)')[1]
open(out + '/inbox-rfc822-1.eml', 'wb').write(d['RFC822'])
res['unseen_after_rfc822'] = search('UNSEEN')
res['meta'] = fetch('1:2', '(FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)')

res['store'] = fetch_store = fetched(ok(M.store('1', '+FLAGS', '(\\Flagged)'), 'STORE'))
res['copyuid'] = code(ok(M.copy('1', 'Work'), 'COPY'), 'COPYUID')
typ, data = M._simple_command('MOVE', '2', 'Work')
ok((typ, data), 'MOVE')
res['move'] = {
    'expunge': [int(x) for x in M.untagged_responses.pop('EXPUNGE', [])],
    'copyuid': (M.untagged_responses.pop('COPYUID', [b''])[0].decode().split() or code(data, 'COPYUID')),
}
data = ok(M.append('INBOX', None, None, scratch), 'APPEND scratch')
scratch_uid = code(data, 'APPENDUID')
ok(M.noop(), 'NOOP')
res['exists_after_scratch'] = [int(x) for x in M.untagged_responses.pop('EXISTS', [])]
if scratch_uid:
    ok(M.uid('STORE', scratch_uid[1], '+FLAGS.SILENT', '(\\Deleted)'), 'UID STORE')
else:
    ok(M.store('2', '+FLAGS.SILENT', '(\\Deleted)'), 'STORE')
res['expunge'] = [int(x) for x in ok(M.expunge(), 'EXPUNGE') if x]

res['status_work'] = ok(M.status('Work', '(MESSAGES UNSEEN UIDNEXT)'), 'STATUS')[0].decode()
res['select_work'] = int(ok(M.select('Work'), 'SELECT Work')[0])
work = fetch('1:*', '(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])')
for seq, d in work.items():
    open('%s/work-%d.eml' % (out, seq), 'wb').write(d.pop('BODY[]'))
res['work'] = work
ok(M.close(), 'CLOSE')
res['logout'] = M.logout()[0]
json.dump(res, open(out + '/result.json', 'w'), default=lambda b: b.decode('utf-8', 'replace'), indent=1)
`

type imaplibList struct {
	Attrs []string `json:"attrs"`
	Delim string   `json:"delim"`
	Name  string   `json:"name"`
}

type imaplibResult struct {
	CapsBeforeTLS     []string                  `json:"caps_before_tls"`
	CapsBeforeLogin   []string                  `json:"caps_before_login"`
	Caps              []string                  `json:"caps"`
	List              []imaplibList             `json:"list"`
	ListReturnSpecial []imaplibList             `json:"list_return_special"`
	ListSelectSpecial []imaplibList             `json:"list_select_special"`
	AppendUID         []string                  `json:"appenduid"`
	SelectInbox       int                       `json:"select_inbox"`
	UIDValidity       uint32                    `json:"uidvalidity"`
	Search            map[string][]int          `json:"search"`
	UnseenAfterPeek   []int                     `json:"unseen_after_peek"`
	UnseenAfter822    []int                     `json:"unseen_after_rfc822"`
	Meta              map[string]map[string]any `json:"meta"`
	Store             map[string]map[string]any `json:"store"`
	CopyUID           []string                  `json:"copyuid"`
	Move              struct {
		Expunge []int    `json:"expunge"`
		CopyUID []string `json:"copyuid"`
	} `json:"move"`
	ExistsAfterScratch []int                     `json:"exists_after_scratch"`
	Expunge            []int                     `json:"expunge"`
	StatusWork         string                    `json:"status_work"`
	SelectWork         int                       `json:"select_work"`
	Work               map[string]map[string]any `json:"work"`
	Logout             string                    `json:"logout"`
}

// imapAppendedMsg is what imaplib appends to Work.
const imapAppendedMsg = "From: Bob <bob@example.net>\r\n" +
	"To: demo@example.org\r\n" +
	"Subject: appended by imaplib\r\n" +
	"Date: Thu, 01 Feb 2024 10:11:12 +0100\r\n" +
	"\r\n" +
	"Appended body.\r\n"

const imapScratchMsg = "Subject: scratch\r\n\r\nto be expunged\r\n"

// TestInteropPythonImaplib: imaplib in the clear (loopback), after
// STARTTLS and over implicit TLS, each on a fresh server: LIST with
// SPECIAL-USE, CREATE, APPEND with flags and date, SELECT, SEARCH, FETCH of
// whole messages, sections and metadata, STORE, COPY, MOVE, EXPUNGE; then
// the store must hold what the client did.
func TestInteropPythonImaplib(t *testing.T) {
	py := requireTool(t, "python3")
	for _, mode := range []string{"plain", "starttls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			in, stored := imapInstance(t, false)
			addr := in.opt("imap_listen")
			if mode == "ssl" {
				addr = in.opt("imaps_listen")
			}
			host, port := hostPort(t, addr)
			out := t.TempDir()
			cmd := exec.Command(py, "-c", imaplibScript, host, port, mode, imapUser, imapPass, out, imapAppendedMsg, imapScratchMsg)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := runBounded(cmd, 40*time.Second); err != nil {
				t.Fatalf("imaplib %s: %v\n%s\ntranscript:\n%s\nserver log:\n%s", mode, err, stdout.String(), stderr.String(), in.logs())
			}
			var res imaplibResult
			b, err := os.ReadFile(filepath.Join(out, "result.json"))
			if err == nil {
				err = json.Unmarshal(b, &res)
			}
			if err != nil {
				t.Fatalf("imaplib %s: no result: %v\n%s", mode, err, stderr.String())
			}
			failed := checkImaplib(t, mode, out, &res, stored)
			in.stop()
			if failed || t.Failed() {
				t.Logf("imaplib transcript:\n%s", stderr.String())
			}
			checkFolder(t, "INBOX", in.mustFolder(imapUser, "INBOX"),
				[]string{string(stored[0].Raw)}, [][]string{{`\Seen`, `\Flagged`}})
			work := in.mustFolder(imapUser, "Work")
			checkFolder(t, "Work", work,
				[]string{imapAppendedMsg, string(stored[0].Raw), string(stored[1].Raw)},
				[][]string{{`\Seen`}, {`\Seen`, `\Flagged`}, {}})
			if len(work) > 0 {
				want := time.Date(2024, 2, 1, 10, 11, 12, 0, time.FixedZone("", 3600))
				if !work[0].InternalDate.Equal(want) {
					t.Errorf("appended message INTERNALDATE %v, want %v", work[0].InternalDate, want)
				}
				if _, off := work[0].InternalDate.Zone(); off != 3600 {
					t.Errorf("appended message INTERNALDATE zone offset %d, want +0100", off)
				}
				if len(res.AppendUID) == 2 && res.AppendUID[1] != strconv.FormatUint(uint64(work[0].UID), 10) {
					t.Errorf("APPENDUID %v, but the message has UID %d", res.AppendUID, work[0].UID)
				}
			}
		})
	}
}

// checkImaplib checks what the imaplib script saw; it reports whether a
// check failed.
func checkImaplib(t *testing.T, mode, out string, res *imaplibResult, stored []storedMessage) bool {
	t.Helper()
	failed := false
	errorf := func(format string, args ...any) {
		t.Helper()
		failed = true
		t.Errorf("imaplib %s: "+format, append([]any{mode}, args...)...)
	}
	file := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			errorf("%v", err)
		}
		return string(b)
	}
	same := func(what, got, want string) {
		t.Helper()
		if got != want {
			errorf("%s:\n got %q\nwant %q", what, got, want)
		}
	}

	if mode == "starttls" && !slices.Contains(res.CapsBeforeTLS, "STARTTLS") {
		errorf("STARTTLS not advertised before TLS: %v", res.CapsBeforeTLS)
	}
	if slices.Contains(res.CapsBeforeLogin, "STARTTLS") && mode != "plain" {
		errorf("STARTTLS advertised under TLS: %v", res.CapsBeforeLogin)
	}
	if slices.Contains(res.CapsBeforeLogin, "LOGINDISABLED") {
		errorf("LOGINDISABLED advertised (loopback or TLS): %v", res.CapsBeforeLogin)
	}
	for _, c := range []string{"IMAP4REV1", "MOVE", "UIDPLUS", "SPECIAL-USE", "LIST-EXTENDED"} {
		if !slices.Contains(res.Caps, c) {
			errorf("capability %s not advertised: %v", c, res.Caps)
		}
	}

	// LIST: INBOX and the default folders with their SPECIAL-USE attributes.
	roles := map[string]string{"INBOX": "", "Sent": `\Sent`, "Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`}
	checkList := func(what string, entries []imaplibList, onlySpecial bool) {
		t.Helper()
		var names, want []string
		for _, e := range entries {
			names = append(names, e.Name)
			if e.Delim != "/" {
				errorf("%s: %s has delimiter %q", what, e.Name, e.Delim)
			}
			role, known := roles[e.Name]
			if !known {
				continue
			}
			for _, a := range e.Attrs {
				switch strings.ToLower(a) {
				case `\sent`, `\drafts`, `\trash`, `\junk`, `\archive`, `\all`, `\flagged`:
					if !strings.EqualFold(a, role) {
						errorf("%s: %s has attribute %s", what, e.Name, a)
					}
				}
			}
			if role != "" && !slices.ContainsFunc(e.Attrs, func(a string) bool { return strings.EqualFold(a, role) }) {
				errorf("%s: %s has attributes %v, want %s among them", what, e.Name, e.Attrs, role)
			}
		}
		for n, r := range roles {
			if !onlySpecial || r != "" {
				want = append(want, n)
			}
		}
		sort.Strings(names)
		sort.Strings(want)
		if !slices.Equal(names, want) {
			errorf("%s: folders %v, want %v", what, names, want)
		}
	}
	checkList("LIST", res.List, false)
	checkList("LIST RETURN (SPECIAL-USE)", res.ListReturnSpecial, false)
	checkList("LIST (SPECIAL-USE)", res.ListSelectSpecial, true)

	if len(res.AppendUID) != 2 {
		errorf("APPEND to Work: no APPENDUID (UIDPLUS is advertised): %v", res.AppendUID)
	}
	if res.SelectInbox != 2 {
		errorf("SELECT INBOX: %d EXISTS, want 2", res.SelectInbox)
	}
	uids := []int{int(stored[0].UID), int(stored[1].UID)}
	wantSearch := map[string][]int{
		"ALL": {1, 2}, "SUBJECT hello": {1}, "FROM carol": {2}, "UNSEEN": {1, 2},
		"BODY attachment": {2}, "HEADER Message-ID": {2}, "UID ALL": uids,
	}
	for k, want := range wantSearch {
		if got := res.Search[k]; !slices.Equal(got, want) {
			errorf("SEARCH %s: %v, want %v", k, got, want)
		}
	}
	if !slices.Equal(res.UnseenAfterPeek, []int{1, 2}) {
		errorf("SEARCH UNSEEN after BODY.PEEK[]: %v, want [1 2] (PEEK must not set \\Seen)", res.UnseenAfterPeek)
	}
	if !slices.Equal(res.UnseenAfter822, []int{2}) {
		errorf("SEARCH UNSEEN after FETCH RFC822: %v, want [2] (RFC822 sets \\Seen)", res.UnseenAfter822)
	}

	// Whole messages and sections, byte for byte.
	for i, m := range stored {
		same(fmt.Sprintf("BODY.PEEK[] of %d", i+1), file(fmt.Sprintf("inbox-peek-%d.eml", i+1)), string(m.Raw))
	}
	same("RFC822 of 1", file("inbox-rfc822-1.eml"), string(stored[0].Raw))
	header, text := splitMessage(stored[0].Raw)
	same("BODY[HEADER] of 1", file("inbox-header-1.eml"), header)
	same("BODY[TEXT] of 1", file("inbox-text-1.eml"), text)
	same("BODY[1] of 2", file("inbox-part-2-1.eml"), "See the attachment.")
	same("BODY[2] of 2", file("inbox-part-2-2.eml"), imapAttachmentPart)
	same("BODY[2.MIME] of 2", file("inbox-part-2-2.MIME.eml"),
		"Content-Type: application/octet-stream; name=\"report.bin\"\r\n"+
			"Content-Disposition: attachment; filename=\"report.bin\"\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n")

	// FLAGS, UID, RFC822.SIZE, INTERNALDATE, ENVELOPE, BODYSTRUCTURE.
	for i, m := range stored {
		d := res.Meta[strconv.Itoa(i+1)]
		if d == nil {
			errorf("FETCH 1:2: nothing for message %d: %v", i+1, res.Meta)
			continue
		}
		if got := jsonInt(d["UID"]); got != int(m.UID) {
			errorf("message %d: UID %v, want %d", i+1, d["UID"], m.UID)
		}
		if got := jsonInt(d["RFC822.SIZE"]); got != len(m.Raw) {
			errorf("message %d: RFC822.SIZE %v, want %d", i+1, d["RFC822.SIZE"], len(m.Raw))
		}
		wantFlags := []string{}
		if i == 0 {
			wantFlags = []string{`\Seen`}
		}
		if got := withoutRecent(jsonStrings(d["FLAGS"])); !sameFlags(got, wantFlags) {
			errorf("message %d: FLAGS %v, want %v", i+1, d["FLAGS"], wantFlags)
		}
		s, _ := d["INTERNALDATE"].(string)
		if got, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s); err != nil || !got.Equal(m.InternalDate) {
			errorf("message %d: INTERNALDATE %q, want %q", i+1, s, m.InternalDate.Format("_2-Jan-2006 15:04:05 -0700"))
		}
	}
	if d := res.Meta["1"]; d != nil {
		checkJSON(t, &failed, "ENVELOPE of 1", d["ENVELOPE"], `["Mon, 01 Jan 2024 10:00:00 +0000", "hello world",
			[["Alice Example", null, "alice", "remote.example"]], [["Alice Example", null, "alice", "remote.example"]],
			[["Alice Example", null, "alice", "remote.example"]], [[null, null, "demo", "example.org"]],
			null, null, null, "<plain-1@remote.example>"]`)
		_, body := splitMessage(stored[0].Raw)
		bs, _ := d["BODYSTRUCTURE"].([]any)
		if len(bs) < 8 || !eqFold(bs[0], "TEXT") || !eqFold(bs[1], "PLAIN") || !eqFold(bs[5], "7BIT") ||
			jsonInt(bs[6]) != len(body) || jsonInt(bs[7]) != strings.Count(body, "\r\n") {
			errorf("BODYSTRUCTURE of 1: %v, want (\"TEXT\" \"PLAIN\" ... \"7BIT\" %d %d ...)", d["BODYSTRUCTURE"], len(body), strings.Count(body, "\r\n"))
		} else if bs[2] != nil && !(len(jsonStrings(bs[2])) == 2 && eqFold(bs[2].([]any)[0], "CHARSET") && eqFold(bs[2].([]any)[1], "us-ascii")) {
			errorf("BODYSTRUCTURE of 1: parameters %v, want NIL or (\"CHARSET\" \"us-ascii\")", bs[2])
		}
	}
	if d := res.Meta["2"]; d != nil {
		checkJSON(t, &failed, "ENVELOPE of 2", d["ENVELOPE"], `["Tue, 02 Jan 2024 11:00:00 +0000", "report attached",
			[["Carol", null, "carol", "remote.example"]], [["Carol", null, "carol", "remote.example"]],
			[["Carol", null, "carol", "remote.example"]], [[null, null, "demo", "example.org"]],
			null, null, null, "<multi-2@remote.example>"]`)
		bs, _ := d["BODYSTRUCTURE"].([]any)
		ok := len(bs) >= 3
		if ok {
			p1, _ := bs[0].([]any)
			p2, _ := bs[1].([]any)
			ok = eqFold(bs[2], "MIXED") &&
				len(p1) >= 7 && eqFold(p1[0], "TEXT") && eqFold(p1[1], "PLAIN") && jsonInt(p1[6]) == len("See the attachment.") &&
				len(p1[2].([]any)) == 2 && eqFold(p1[2].([]any)[0], "CHARSET") && eqFold(p1[2].([]any)[1], "utf-8") &&
				len(p2) >= 7 && eqFold(p2[0], "APPLICATION") && eqFold(p2[1], "OCTET-STREAM") && eqFold(p2[5], "BASE64") &&
				jsonInt(p2[6]) == len(imapAttachmentPart)
			if ok && len(bs) >= 4 { // extension data: (boundary)
				ps := jsonStrings(bs[3])
				ok = len(ps) == 2 && strings.EqualFold(ps[0], "BOUNDARY") && ps[1] == "b1"
			}
			if ok && len(p2) >= 9 { // extension data: MD5, disposition
				disp, _ := p2[8].([]any)
				ok = len(disp) == 2 && eqFold(disp[0], "ATTACHMENT") &&
					len(jsonStrings(disp[1])) == 2 && eqFold(disp[1].([]any)[0], "FILENAME") && disp[1].([]any)[1] == "report.bin"
			}
		}
		if !ok {
			b, _ := json.Marshal(d["BODYSTRUCTURE"])
			errorf("BODYSTRUCTURE of 2: %s, want ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 19 ...)(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"report.bin\") NIL NIL \"BASE64\" %d NIL (\"ATTACHMENT\" (\"FILENAME\" \"report.bin\")) ...) \"MIXED\" (\"BOUNDARY\" \"b1\") ...)", b, len(imapAttachmentPart))
		}
	}

	if d := res.Store["1"]; d == nil || !sameFlags(withoutRecent(jsonStrings(d["FLAGS"])), []string{`\Seen`, `\Flagged`}) {
		errorf("STORE 1 +FLAGS (\\Flagged): %v, want FLAGS (\\Seen \\Flagged)", res.Store)
	}
	if len(res.CopyUID) != 3 {
		errorf("COPY: no COPYUID (UIDPLUS is advertised): %v", res.CopyUID)
	}
	if !slices.Equal(res.Move.Expunge, []int{2}) {
		errorf("MOVE 2 Work: expunged %v, want [2]", res.Move.Expunge)
	}
	if len(res.Move.CopyUID) != 3 {
		errorf("MOVE: no COPYUID (UIDPLUS is advertised): %v", res.Move.CopyUID)
	}
	if !slices.Contains(res.ExistsAfterScratch, 2) {
		errorf("APPEND to the selected INBOX: EXISTS %v, want 2", res.ExistsAfterScratch)
	}
	if !slices.Equal(res.Expunge, []int{2}) {
		errorf("EXPUNGE: %v, want [2]", res.Expunge)
	}
	if st := regexp.MustCompile(`^"?Work"? \((.*)\)$`).FindStringSubmatch(res.StatusWork); st == nil ||
		!sameFlags(strings.Fields(st[1]), strings.Fields("MESSAGES 3 UNSEEN 1 UIDNEXT 4")) {
		errorf("STATUS Work: %q, want Work (MESSAGES 3 UNSEEN 1 UIDNEXT 4)", res.StatusWork)
	}
	if res.SelectWork != 3 {
		errorf("SELECT Work: %d EXISTS, want 3", res.SelectWork)
	}
	work := []string{imapAppendedMsg, string(stored[0].Raw), string(stored[1].Raw)}
	flags := [][]string{{`\Seen`}, {`\Seen`, `\Flagged`}, {}}
	for i, want := range work {
		same(fmt.Sprintf("Work message %d", i+1), file(fmt.Sprintf("work-%d.eml", i+1)), want)
		d := res.Work[strconv.Itoa(i+1)]
		if d == nil {
			errorf("FETCH 1:* in Work: nothing for %d", i+1)
			continue
		}
		if !sameFlags(withoutRecent(jsonStrings(d["FLAGS"])), flags[i]) {
			errorf("Work message %d: FLAGS %v, want %v", i+1, d["FLAGS"], flags[i])
		}
		if jsonInt(d["RFC822.SIZE"]) != len(want) {
			errorf("Work message %d: RFC822.SIZE %v, want %d", i+1, d["RFC822.SIZE"], len(want))
		}
	}
	if d := res.Work["1"]; d != nil {
		// The instant must be kept; the zone may be the server's (RFC 9051 6.3.12).
		s, _ := d["INTERNALDATE"].(string)
		got, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
		if want := time.Date(2024, 2, 1, 9, 11, 12, 0, time.UTC); err != nil || !got.Equal(want) {
			errorf("appended message: INTERNALDATE %q, want 01-Feb-2024 10:11:12 +0100", s)
		}
	}
	if res.Logout != "BYE" {
		errorf("LOGOUT: %q, want BYE", res.Logout)
	}
	return failed
}

// withoutRecent drops \Recent, which IMAP4rev1 sessions see and the store
// does not keep.
func withoutRecent(flags []string) []string {
	return slices.DeleteFunc(flags, func(f string) bool { return strings.EqualFold(f, `\Recent`) })
}

func jsonInt(v any) int {
	switch v := v.(type) {
	case string:
		n, err := strconv.Atoi(v)
		if err != nil {
			return -1
		}
		return n
	case float64:
		return int(v)
	}
	return -1
}

func jsonStrings(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

func eqFold(v any, s string) bool {
	got, ok := v.(string)
	return ok && strings.EqualFold(got, s)
}

func checkJSON(t *testing.T, failed *bool, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		*failed = true
		g, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, g, wb)
	}
}

// runBounded runs cmd, killing it after d.
func runBounded(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("killed after %v", d)
	}
}

// ---------------------------------------------------------------------
// curl
