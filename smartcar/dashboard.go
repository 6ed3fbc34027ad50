package smartcar

import (
	"net/url"
	"strings"
)

// DefaultDashboardURLTemplate is where a person manages an application's
// secrets in the Smartcar Dashboard. keyturn's configuration may replace
// it, because Smartcar may move the page; "{client_id}" marks where the
// client ID goes.
const DefaultDashboardURLTemplate = "https://dashboard.smartcar.com/team/" +
	"applications/{client_id}/configuration"

// DashboardURL returns the Dashboard page for clientID, built from
// template, or from DefaultDashboardURLTemplate when template is empty.
// The client ID is escaped as a URL path segment.
func DashboardURL(template, clientID string) string {
	if template == "" {
		template = DefaultDashboardURLTemplate
	}
	return strings.ReplaceAll(template, "{client_id}", url.PathEscape(clientID))
}
