package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3Options configure the S3 backend. Zero values take the standard AWS environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
type S3Options struct {
	Endpoint  string // e.g. http://127.0.0.1:9000 for MinIO; path-style addressing is always used
	Region    string
	AccessKey string
	SecretKey string
}

// EnvS3Endpoint names the environment variable that overrides the S3 endpoint when
// S3Options.Endpoint is empty. It takes precedence over the SDK's AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
const EnvS3Endpoint = "KAIRN_S3_ENDPOINT"

// defaultS3Region is used when neither the options nor the AWS environment/profile name a region.
// S3-compatible servers such as MinIO accept it, and AWS redirects are reported with the right region.
const defaultS3Region = "us-east-1"

// putMemLimit is how much of an unseekable Put body is buffered in memory before spilling to a
// temporary file. The SDK needs a seekable body to sign it (and to retry) over plain http.
const putMemLimit = 8 << 20

// RangeReader is implemented by stores that can read part of an object without fetching it
// whole (S3), e.g. for Parquet footers.
type RangeReader interface {
	// GetRange returns n bytes of key starting at off; n < 0 reads to the end of the object.
	GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Size returns the size of key in bytes (ErrNotExist, wrapped, if it is missing).
	Size(ctx context.Context, key string) (int64, error)
}

// S3 is a Store in an S3 (or S3-compatible, e.g. MinIO) bucket under an optional key prefix.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or "a/b/" (always ends in a slash when non-empty)
	endpoint string // explicit endpoint in use, "" for the SDK's default resolution
}

var (
	_ Store       = (*S3)(nil)
	_ RangeReader = (*S3)(nil)
)

// ParseS3Location splits s3://bucket/prefix into the bucket and a normalised prefix
// ("" or "a/b/": no leading, duplicate or missing trailing slashes).
func ParseS3Location(location string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(location, "s3://")
	if !ok {
		return "", "", fmt.Errorf("archive %q: not an s3:// URL", location)
	}
	if strings.ContainsAny(rest, "?#") {
		return "", "", fmt.Errorf("archive %q: query strings and fragments are not supported in s3:// URLs", location)
	}
	bucket, path, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("archive %q: missing bucket name (want s3://bucket/prefix)", location)
	}
	if !validBucketName(bucket) {
		return "", "", fmt.Errorf("archive %q: invalid bucket name %q", location, bucket)
	}
	var segs []string
	for _, s := range strings.Split(path, "/") {
		switch s {
		case "":
			continue
		case ".", "..":
			return "", "", fmt.Errorf("archive %q: prefix must not contain %q segments", location, s)
		}
		segs = append(segs, s)
	}
	if len(segs) > 0 {
		prefix = strings.Join(segs, "/") + "/"
	}
	return bucket, prefix, nil
}

// validBucketName is a loose check (S3 and MinIO apply the exact rules): 3-63 characters of
// lower-case letters, digits, dots and hyphens.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// OpenS3 opens an archive at s3://bucket/prefix. The bucket must exist (it is checked with
// HeadBucket, and never created); the prefix need not.
//
// Endpoint: opts.Endpoint, else $KAIRN_S3_ENDPOINT, else the SDK's AWS_ENDPOINT_URL_S3 /
// AWS_ENDPOINT_URL / profile handling, else AWS. Path-style addressing is always used.
// Region: opts.Region, else the AWS environment/profile, else us-east-1.
// Credentials: opts.AccessKey/SecretKey, else the standard AWS credential chain.
func OpenS3(ctx context.Context, location string, opts S3Options) (Store, error) {
	bucket, prefix, err := ParseS3Location(location)
	if err != nil {
		return nil, err
	}
	st := &S3{bucket: bucket, prefix: prefix}

	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, fmt.Errorf("%s: both an access key and a secret key are needed, got only one", st)
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv(EnvS3Endpoint)
	}
	if endpoint != "" {
		if !strings.Contains(endpoint, "://") {
			endpoint = "https://" + endpoint
		}
		endpoint = strings.TrimRight(endpoint, "/")
		st.endpoint = endpoint
	}

	var loadOpts []func(*config.LoadOptions) error
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: loading AWS configuration: %w", st, err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultS3Region
	}
	// Since 2025 the SDK adds CRC checksums (and aws-chunked trailers over https) to every upload
	// by default, which several S3-compatible servers reject. Against an explicit non-AWS endpoint
	// only send checksums where the API requires them, unless the user chose otherwise.
	relaxChecksums := endpoint != "" && !strings.HasSuffix(hostOf(endpoint), ".amazonaws.com")
	st.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if relaxChecksums {
			if os.Getenv("AWS_REQUEST_CHECKSUM_CALCULATION") == "" {
				o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			}
			if os.Getenv("AWS_RESPONSE_CHECKSUM_VALIDATION") == "" {
				o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			}
		}
	})

	if _, err := st.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return nil, st.wrap("", "", err)
	}
	return st, nil
}

func hostOf(endpoint string) string {
	_, rest, _ := strings.Cut(endpoint, "://")
	host, _, _ := strings.Cut(rest, "/")
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	return strings.ToLower(host)
}

// String is the normalised s3:// URL of the archive, e.g. s3://bucket/some/prefix.
func (s *S3) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Bucket is the archive's bucket.
func (s *S3) Bucket() string { return s.bucket }

// Prefix is the archive's key prefix inside the bucket: "" or "a/b/".
func (s *S3) Prefix() string { return s.prefix }

// Endpoint is the explicitly configured endpoint URL (options or $KAIRN_S3_ENDPOINT), or "" when
// the SDK's own resolution (AWS_ENDPOINT_URL*, profile, AWS) applies.
func (s *S3) Endpoint() string { return s.endpoint }

// Client exposes the underlying SDK client.
func (s *S3) Client() *s3.Client { return s.client }

// objectKey maps an archive key to the bucket key, rejecting keys that would escape the prefix or
// create odd objects (empty, absolute, "." / ".." / empty segments).
func (s *S3) objectKey(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("%s: invalid object key %q", s, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%s: invalid object key %q", s, key)
		}
	}
	return s.prefix + key, nil
}

// Put uploads key with a single PutObject, which S3 applies atomically and which replaces any
// existing object. Bodies that are not seekable, or whose size is unknown, are buffered first
// (in memory up to 8 MiB, then in a temporary file) so the request can be signed and retried.
// A single PutObject is limited to 5 GiB.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	okey, err := s.objectKey(key)
	if err != nil {
		return err
	}
	body, n, cleanup, err := seekableBody(r, size)
	if err != nil {
		return fmt.Errorf("%s: put %s: reading body: %w", s, key, err)
	}
	defer cleanup()
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(okey),
		Body:          body,
		ContentLength: aws.Int64(n),
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// readSeeker hides every method of the wrapped value but Read and Seek, so the SDK (net/http)
// never closes a caller's file.
type readSeeker struct{ io.ReadSeeker }

// seekableBody returns r (or a buffered copy of it) as a seekable body positioned at its start,
// with its length.
func seekableBody(r io.Reader, size int64) (io.ReadSeeker, int64, func(), error) {
	nop := func() {}
	if rs, ok := r.(io.ReadSeeker); ok {
		if size >= 0 {
			return readSeeker{rs}, size, nop, nil
		}
		cur, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			var end int64
			if end, err = rs.Seek(0, io.SeekEnd); err == nil {
				if _, err = rs.Seek(cur, io.SeekStart); err == nil {
					return readSeeker{rs}, end - cur, nop, nil
				}
			}
		}
		// Not really seekable (e.g. a pipe in an *os.File): fall through and buffer. If the
		// failed Seek moved the position there is nothing to recover anyway.
	}
	var buf bytes.Buffer
	if size >= 0 && size <= putMemLimit {
		buf.Grow(int(size))
	}
	n, err := io.CopyN(&buf, r, putMemLimit+1)
	if err == io.EOF || (err == nil && n <= putMemLimit) {
		return bytes.NewReader(buf.Bytes()), n, nop, nil
	}
	if err != nil {
		return nil, 0, nop, err
	}
	f, err := os.CreateTemp("", "kairn-s3-put-*")
	if err != nil {
		return nil, 0, nop, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	total, err := io.Copy(f, io.MultiReader(&buf, r))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nop, err
	}
	return readSeeker{f}, total, cleanup, nil
}

// Get streams key; a missing key returns an error wrapping ErrNotExist.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	if out.ContentLength != nil && *out.ContentLength >= 0 {
		return sizedBody{out.Body, *out.ContentLength}, nil
	}
	return out.Body, nil
}

// sizedBody is an object's body that knows its length, so ReadAll reads it into one buffer.
type sizedBody struct {
	io.ReadCloser
	size int64
}

func (b sizedBody) Size() int64 { return b.size }

// GetRange streams n bytes of key starting at off (a ranged GET); n < 0 reads to the end.
// A range past the end of the object is an error; a missing key wraps ErrNotExist.
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("%s: get %s: negative offset %d", s, key, off)
	}
	if n == 0 {
		// HTTP cannot express an empty range; still report a missing key.
		if _, err := s.Size(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	rng := fmt.Sprintf("bytes=%d-", off)
	if n > 0 {
		rng = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(okey),
		Range:  aws.String(rng),
	})
	if err != nil {
		return nil, s.wrap("get "+rng+" of", key, err)
	}
	return out.Body, nil
}

// Size returns the size of key via HeadObject; a missing key wraps ErrNotExist.
func (s *S3) Size(ctx context.Context, key string) (int64, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return 0, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)})
	if err != nil {
		return 0, s.wrap("stat", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// List returns every object under the archive whose key (relative to the archive prefix) starts
// with prefix, sorted by key. "Directory marker" objects (keys ending in a slash) are skipped.
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	var out []ObjectInfo
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			rel, ok := strings.CutPrefix(k, s.prefix)
			if !ok || rel == "" || strings.HasSuffix(rel, "/") {
				continue
			}
			out = append(out, ObjectInfo{Key: rel, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	okey, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)}); err != nil {
		return s.wrap("delete", key, err)
	}
	return nil
}

// wrap turns an SDK error into "s3://b/p: op key: explanation: sdk error", wrapping ErrNotExist
// for missing objects. The SDK error stays in the chain for errors.As.
func (s *S3) wrap(op, key string, err error) error {
	where := s.String()
	if op != "" {
		where += ": " + strings.TrimSpace(op+" "+key)
	}
	var (
		apiErr  smithy.APIError
		respErr *awshttp.ResponseError
		code    string
		status  int
	)
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	var noBucket *types.NoSuchBucket
	switch {
	case errors.As(err, &noBucket) || code == "NoSuchBucket" || (op == "" && status == http.StatusNotFound):
		return fmt.Errorf("%s: bucket %q does not exist (create it first; kairn never creates buckets): %w", where, s.bucket, err)
	case errors.As(err, &noKey) || errors.As(err, &notFound) || code == "NoSuchKey" || status == http.StatusNotFound:
		return fmt.Errorf("%s: %w: %w", where, ErrNotExist, err)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" || code == "ExpiredToken":
		return fmt.Errorf("%s: credentials rejected (%s; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile): %w", where, code, err)
	case code == "AccessDenied" || status == http.StatusForbidden:
		return fmt.Errorf("%s: access denied (credentials rejected, or lacking permission on bucket %q): %w", where, s.bucket, err)
	case status == http.StatusMovedPermanently || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed":
		region := ""
		if respErr != nil && respErr.Response != nil {
			region = respErr.Response.Header.Get("X-Amz-Bucket-Region")
		}
		if region != "" {
			return fmt.Errorf("%s: bucket %q is in region %s (set AWS_REGION=%s): %w", where, s.bucket, region, region, err)
		}
		return fmt.Errorf("%s: wrong region for bucket %q (set AWS_REGION): %w", where, s.bucket, err)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s: range outside the object: %w", where, err)
	case strings.Contains(err.Error(), "failed to retrieve credentials") ||
		strings.Contains(err.Error(), "failed to refresh cached credentials"):
		return fmt.Errorf("%s: no usable AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE): %w", where, err)
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		ep := s.endpoint
		if ep == "" {
			ep = "(AWS default endpoint)"
		}
		return fmt.Errorf("%s: cannot reach S3 endpoint %s: %w", where, ep, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
