package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// The AWS SDK's errors are chains written for its developers: "operation error STS:
// GetCallerIdentity, get identity: get credentials: failed to refresh cached credentials,
// no EC2 IMDS role found, operation error ec2imds: GetMetadata, http response error
// StatusCode: 403, …". A problem says the cause in words and what to do; the chain goes
// to a debug line (`-v`, the debug log) for whoever digs further.

const credentialsFix = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"

// checkCredentials finds credentials and has STS say whose they are; a problem in words
// when either fails.
func checkCredentials(ctx context.Context, s *installer.Scope, cfg aws.Config) (*sts.GetCallerIdentityOutput, string) {
	if cfg.Credentials == nil {
		return nil, "no AWS credentials found: " + credentialsFix
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		s.Debugf("AWS credentials: %v", err)
		// The SDK's chain ends with the instance role when nothing else is configured:
		// no environment variables, no profile with credentials, no web identity.
		if aws.IsCredentialsProvider(cfg.Credentials, (*ec2rolecreds.Provider)(nil)) {
			return nil, "no AWS credentials found: no environment variables, no profile with credentials, no instance role: " + credentialsFix
		}
		where := "the default profile"
		if p := os.Getenv("AWS_PROFILE"); p != "" {
			where = "profile " + p
		}
		return nil, fmt.Sprintf("the AWS credentials of %s cannot be loaded (%s): check them with `aws sts get-caller-identity`", where, innermost(err))
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		s.Debugf("AWS STS GetCallerIdentity: %v", err)
		return nil, stsProblem(err)
	}
	return id, ""
}

// stsProblem says why STS refused or could not be reached.
func stsProblem(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidClientTokenId", "UnrecognizedClientException":
			return "AWS does not know this access key (" + api.ErrorCode() + "): check AWS_ACCESS_KEY_ID or the profile's key"
		case "SignatureDoesNotMatch":
			return "the AWS secret access key does not belong to the access key (SignatureDoesNotMatch): check AWS_SECRET_ACCESS_KEY or the profile's secret"
		case "ExpiredToken", "ExpiredTokenException", "RequestExpired":
			return "the AWS session has expired (" + api.ErrorCode() + "): get fresh credentials (aws sso login, or a new session token)"
		}
		return fmt.Sprintf("AWS refused the credentials (%s: %s): check them with `aws sts get-caller-identity`", api.ErrorCode(), api.ErrorMessage())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		return fmt.Sprintf("cannot reach AWS STS at %s (%s): check the network, HTTPS_PROXY, or AWS_ENDPOINT_URL", host, innermost(err))
	}
	return fmt.Sprintf("AWS credentials do not work (%s): %s", innermost(err), credentialsFix)
}

// innermost is the end of an error chain: the cause itself ("connection refused"),
// without the layers that carried it.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
