package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kairn-dev/kairn/internal/testminio"
)

func TestParseS3Location(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix, err string
	}{
		{in: "s3://bkt", bucket: "bkt"},
		{in: "s3://bkt/", bucket: "bkt"},
		{in: "s3://bkt/a", bucket: "bkt", prefix: "a/"},
		{in: "s3://bkt//a///b/", bucket: "bkt", prefix: "a/b/"},
		{in: "s3://my.bucket-1/some/prefix", bucket: "my.bucket-1", prefix: "some/prefix/"},
		{in: "s3:///a", err: "missing bucket"},
		{in: "s3://", err: "missing bucket"},
		{in: "s3://Bad_Bucket/a", err: "invalid bucket name"},
		{in: "s3://bkt/a/../b", err: `".."`},
		{in: "s3://bkt/a?region=x", err: "query strings"},
		{in: "/tmp/x", err: "not an s3:// URL"},
	} {
		b, p, err := ParseS3Location(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseS3Location(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseS3Location(%q) = %q, %q, %v; want %q, %q", tc.in, b, p, err, tc.bucket, tc.prefix)
		}
	}
}

// isolateAWSEnv keeps the host's AWS configuration (profiles, credentials, IMDS) out of a test.
func isolateAWSEnv(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                  none,
		"AWS_SHARED_CREDENTIALS_FILE":      none,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_PROFILE":                      "",
		"AWS_REGION":                       "",
		"AWS_DEFAULT_REGION":               "",
		"AWS_ACCESS_KEY_ID":                "",
		"AWS_SECRET_ACCESS_KEY":            "",
		"AWS_SESSION_TOKEN":                "",
		"AWS_ENDPOINT_URL":                 "",
		"AWS_ENDPOINT_URL_S3":              "",
		"AWS_REQUEST_CHECKSUM_CALCULATION": "",
		"AWS_RESPONSE_CHECKSUM_VALIDATION": "",
		EnvS3Endpoint:                      "",
	} {
		t.Setenv(k, v)
	}
}

// onlyReader hides every method but Read: a non-seekable stream such as a pipe.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readAll(t *testing.T, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestS3MinIO(t *testing.T) {
	isolateAWSEnv(t)
	endpoint, ak, sk := testminio.Start(t)
	const bucket = "kairn-test"
	testminio.Bucket(t, endpoint, ak, sk, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Configure through the environment, as a user of `kairn --archive s3://...` would.
	t.Setenv(EnvS3Endpoint, endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", ak)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
	st, err := OpenStore(ctx, "s3://"+bucket+"//some/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.String(), "s3://kairn-test/some/prefix"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	rr, ok := st.(RangeReader)
	if !ok {
		t.Fatalf("%T does not implement RangeReader", st)
	}

	// Objects outside the archive prefix (including a sibling sharing its leading characters)
	// must never show up. (No object named exactly "some/prefix": MinIO cannot hold an object and a
	// prefix of the same name, and then lists the prefix as empty; real S3 can.)
	raw := testminio.Client(endpoint, ak, sk)
	for _, k := range []string{"some/prefixed/x", "some/prefix-sibling", "other/y"} {
		if _, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("outside")}); err != nil {
			t.Fatal(err)
		}
	}
	// A console-style "directory marker" inside the prefix is not an object of the archive.
	if _, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("some/prefix/dir/"), Body: bytes.NewReader(nil)}); err != nil {
		t.Fatal(err)
	}

	small := []byte("hello, kairn\n")
	big := randBytes(1, 6<<20+123)      // > 5 MiB, seekable, size given
	stream := randBytes(2, 9<<20+7)     // > the in-memory buffer: spills to a temporary file
	streamSmall := randBytes(3, 70_001) // non-seekable, size known
	seekNoSize := randBytes(4, 4096)    // seekable, size unknown

	// A caller's *os.File must not be closed by the upload.
	fpath := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(fpath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fpath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	puts := []struct {
		key  string
		r    io.Reader
		size int64
	}{
		{"a.txt", bytes.NewReader(small), int64(len(small))},
		{"dir/big.bin", f, int64(len(big))},
		{"dir/stream.bin", onlyReader{bytes.NewReader(stream)}, -1},
		{"dir/stream-small.bin", onlyReader{bytes.NewReader(streamSmall)}, int64(len(streamSmall))},
		{"dir/sub/seek.bin", bytes.NewReader(seekNoSize), -1},
		{"empty", onlyReader{bytes.NewReader(nil)}, -1},
	}
	for _, p := range puts {
		if err := st.Put(ctx, p.key, p.r, p.size); err != nil {
			t.Fatalf("Put(%s): %v", p.key, err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Errorf("caller's file was closed by Put: %v", err)
	}

	want := map[string][]byte{
		"a.txt":                small,
		"dir/big.bin":          big,
		"dir/stream.bin":       stream,
		"dir/stream-small.bin": streamSmall,
		"dir/sub/seek.bin":     seekNoSize,
		"empty":                {},
	}
	checkList := func(prefix string, keys ...string) {
		t.Helper()
		got, err := st.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var gotKeys []string
		for _, o := range got {
			gotKeys = append(gotKeys, o.Key)
			if o.Size != int64(len(want[o.Key])) {
				t.Errorf("List(%q): %s has size %d, want %d", prefix, o.Key, o.Size, len(want[o.Key]))
			}
			if o.Modified.IsZero() || time.Since(o.Modified) > time.Hour {
				t.Errorf("List(%q): %s has modification time %v", prefix, o.Key, o.Modified)
			}
		}
		if strings.Join(gotKeys, ",") != strings.Join(keys, ",") {
			t.Errorf("List(%q) = %q, want %q", prefix, gotKeys, keys)
		}
	}
	checkList("", "a.txt", "dir/big.bin", "dir/stream-small.bin", "dir/stream.bin", "dir/sub/seek.bin", "empty")
	checkList("dir/", "dir/big.bin", "dir/stream-small.bin", "dir/stream.bin", "dir/sub/seek.bin")
	checkList("dir/stream", "dir/stream-small.bin", "dir/stream.bin")
	checkList("nothing/")

	for k, w := range want {
		rc, err := st.Get(ctx, k)
		if got := readAll(t, rc, err); !bytes.Equal(got, w) {
			t.Errorf("Get(%s): %d bytes differ from the %d put", k, len(got), len(w))
		}
		n, err := rr.Size(ctx, k)
		if err != nil || n != int64(len(w)) {
			t.Errorf("Size(%s) = %d, %v; want %d", k, n, err, len(w))
		}
	}

	// Ranged reads, e.g. a Parquet footer.
	for _, tc := range []struct{ off, n int64 }{
		{0, 1}, {5 << 20, 1 << 20}, {int64(len(big)) - 8, 8}, {int64(len(big)) - 8, -1}, {100, 0}, {0, -1},
	} {
		rc, err := rr.GetRange(ctx, "dir/big.bin", tc.off, tc.n)
		got := readAll(t, rc, err)
		end := int64(len(big))
		if tc.n >= 0 {
			end = tc.off + tc.n
		}
		if !bytes.Equal(got, big[tc.off:end]) {
			t.Errorf("GetRange(%d, %d): got %d bytes, want %d", tc.off, tc.n, len(got), end-tc.off)
		}
	}
	if _, err := rr.GetRange(ctx, "dir/big.bin", int64(len(big))+10, 5); err == nil {
		t.Error("GetRange past the end: no error")
	}

	// Putting the same key again replaces it.
	newer := []byte("replaced")
	for i := 0; i < 2; i++ {
		if err := st.Put(ctx, "a.txt", bytes.NewReader(newer), int64(len(newer))); err != nil {
			t.Fatal(err)
		}
	}
	want["a.txt"] = newer
	rc, err := st.Get(ctx, "a.txt")
	if got := readAll(t, rc, err); !bytes.Equal(got, newer) {
		t.Errorf("Get after overwrite = %q, want %q", got, newer)
	}
	checkList("a", "a.txt")

	// Delete, and missing keys.
	if err := st.Delete(ctx, "dir/big.bin"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "dir/big.bin"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	delete(want, "dir/big.bin")
	checkList("dir/", "dir/stream-small.bin", "dir/stream.bin", "dir/sub/seek.bin")
	if _, err := st.Get(ctx, "dir/big.bin"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Get of a deleted key: error %v, want ErrNotExist", err)
	} else if !strings.Contains(err.Error(), "dir/big.bin") {
		t.Errorf("Get error %q does not name the key", err)
	}
	if _, err := rr.Size(ctx, "nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Size of a missing key: error %v, want ErrNotExist", err)
	}
	if _, err := rr.GetRange(ctx, "nope", 0, 10); !errors.Is(err, ErrNotExist) {
		t.Errorf("GetRange of a missing key: error %v, want ErrNotExist", err)
	}
	if _, err := rr.GetRange(ctx, "nope", 0, 0); !errors.Is(err, ErrNotExist) {
		t.Errorf("empty GetRange of a missing key: error %v, want ErrNotExist", err)
	}

	for _, bad := range []string{"", "/abs", "../up", "a//b", "a/./b", "dir/"} {
		if err := st.Put(ctx, bad, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q): no error for an invalid key", bad)
		}
	}

	// The objects outside the prefix are untouched.
	out, err := raw.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("other/")})
	if err != nil || len(out.Contents) != 1 {
		t.Errorf("objects outside the archive: %v, %v", out, err)
	}

	t.Run("options", func(t *testing.T) {
		// Explicit options win over the (here: wrong) environment.
		t.Setenv(EnvS3Endpoint, "http://127.0.0.1:1")
		t.Setenv("AWS_ACCESS_KEY_ID", "wrong")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
		st2, err := OpenS3(ctx, "s3://"+bucket+"/some/prefix", S3Options{Endpoint: endpoint, Region: "eu-west-1", AccessKey: ak, SecretKey: sk})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := st2.Get(ctx, "a.txt")
		if got := readAll(t, rc, err); !bytes.Equal(got, newer) {
			t.Errorf("Get via options = %q, want %q", got, newer)
		}
		// The whole bucket as the archive.
		root, err := OpenS3(ctx, "s3://"+bucket, S3Options{Endpoint: endpoint, AccessKey: ak, SecretKey: sk})
		if err != nil {
			t.Fatal(err)
		}
		if root.String() != "s3://"+bucket {
			t.Errorf("String() = %q", root.String())
		}
		objs, err := root.List(ctx, "some/prefix/dir/sub/")
		if err != nil || len(objs) != 1 || objs[0].Key != "some/prefix/dir/sub/seek.bin" {
			t.Errorf("List of the bucket root = %v, %v", objs, err)
		}
	})

	t.Run("sdk-endpoint-env", func(t *testing.T) {
		// Without KAIRN_S3_ENDPOINT the SDK's own AWS_ENDPOINT_URL_S3 applies.
		t.Setenv(EnvS3Endpoint, "")
		t.Setenv("AWS_ENDPOINT_URL_S3", endpoint)
		st3, err := OpenStore(ctx, "s3://"+bucket+"/some/prefix")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st3.(RangeReader).Size(ctx, "a.txt"); err != nil {
			t.Error(err)
		}
	})

	t.Run("sdk-default-checksums", func(t *testing.T) {
		// The SDK's default CRC checksums need a seekable body over plain http; Put must cope
		// with a non-seekable reader there too.
		t.Setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_supported")
		t.Setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_supported")
		st4, err := OpenStore(ctx, "s3://"+bucket+"/some/prefix")
		if err != nil {
			t.Fatal(err)
		}
		data := randBytes(5, 1<<20)
		if err := st4.Put(ctx, "crc.bin", onlyReader{bytes.NewReader(data)}, -1); err != nil {
			t.Fatal(err)
		}
		rc, err := st4.Get(ctx, "crc.bin")
		if got := readAll(t, rc, err); !bytes.Equal(got, data) {
			t.Error("crc.bin differs")
		}
		if err := st4.Delete(ctx, "crc.bin"); err != nil {
			t.Error(err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := OpenStore(ctx, "s3://no-such-bucket/x")
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), `s3://no-such-bucket/x: bucket "no-such-bucket" does not exist`) {
			t.Errorf("missing bucket: error %v", err)
		}
		_, err = OpenS3(ctx, "s3://"+bucket+"/x", S3Options{Endpoint: endpoint, AccessKey: ak, SecretKey: "not-the-secret"})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "credentials") {
			t.Errorf("wrong secret: error %v", err)
		}
		_, err = OpenS3(ctx, "s3://"+bucket+"/x", S3Options{Endpoint: endpoint, AccessKey: ak})
		if err == nil || !strings.Contains(err.Error(), "only one") {
			t.Errorf("access key without secret: error %v", err)
		}
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		_, err = OpenStore(ctx, "s3://"+bucket+"/x")
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "no usable AWS credentials") {
			t.Errorf("no credentials: error %v", err)
		}
		_, err = OpenS3(ctx, "s3://"+bucket+"/x", S3Options{Endpoint: "http://127.0.0.1:1", AccessKey: ak, SecretKey: sk})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "cannot reach S3 endpoint http://127.0.0.1:1") {
			t.Errorf("unreachable endpoint: error %v", err)
		}
	})
}
