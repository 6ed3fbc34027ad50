package awssm

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// xmlErrors reads an error answer written in XML, which Secrets Manager's
// JSON protocol cannot decode. moto answers so when its IAM enforcement
// refuses a call (difference 7 in the package doc); without this, the SDK
// reports "deserialization failed" and the refused action is lost. AWS
// answers in JSON, which passes through untouched.
type xmlErrors struct{}

func (xmlErrors) ID() string { return "keyturn.awssm.XMLErrors" }

func (xmlErrors) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput,
	next middleware.DeserializeHandler) (middleware.DeserializeOutput,
	middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	// moto labels its XML text/html, so anything but JSON is looked at.
	if err != nil || !ok || resp.StatusCode < 400 ||
		strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return out, md, err
	}

	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	var doc struct {
		Code    string `xml:"Errors>Error>Code"`
		Message string `xml:"Errors>Error>Message"`
	}
	if rerr != nil || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) ||
		xml.Unmarshal(body, &doc) != nil || doc.Code == "" {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return out, md, err
	}
	return out, md, &smithy.GenericAPIError{Code: doc.Code, Message: doc.Message,
		Fault: smithy.FaultClient}
}

// addXMLErrors places xmlErrors next to the transport, inside the
// operation's own deserializer, which passes its error on unchanged.
func addXMLErrors(s *middleware.Stack) error {
	return s.Deserialize.Insert(xmlErrors{}, "OperationDeserializer", middleware.After)
}
