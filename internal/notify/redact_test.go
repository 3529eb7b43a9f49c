package notify

import (
	"strings"
	"testing"
)

// Each shoutrrr service's URL shape, with the secrets it holds and a message that shows them
// the way an error or a request URL would: none may survive Redact.
func TestRedactEveryServiceShape(t *testing.T) {
	for _, tc := range []struct {
		url     string
		secrets []string
		public  string // a part that is not secret and stays readable, if any
	}{
		{"ifttt://Wb7yFbD4xQ2kRj9Lm3Tn?events=backup", []string{"Wb7yFbD4xQ2kRj9Lm3Tn"}, ""},
		{"slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", []string{"T00000000", "B00000000", "XXXXXXXXXXXXXXXXXXXXXXXX"}, ""},
		{"slack://botname@T00000001/B00000001/YYYYYYYYYYYYYYYYYYYYYYYY?color=good", []string{"T00000001", "B00000001", "YYYYYYYYYYYYYYYYYYYYYYYY"}, ""},
		{"slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook", []string{"WNA3PBYV6", "F20DUQND3RQ", "Webc4MAvoacrpPakR8phF0zi"}, ""},
		{"slack://xoxb:123456789012-1234567890123-4pT1kqxeXq8sDd5ZgMBe7Q0n@C001CH4NN3L", []string{"123456789012", "1234567890123", "4pT1kqxeXq8sDd5ZgMBe7Q0n"}, ""},
		{"pushbullet://o.Fk3qZsP9w2LmTnYvXr8bC1dE/device1", []string{"o.Fk3qZsP9w2LmTnYvXr8bC1dE"}, ""},
		{"pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?devices=phone", []string{"azGDORePK8gMaC0QOYAMyEEuzJnyUi", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"}, ""},
		{"teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc/V2ESyij_gAljSoUQHvZoZYzlpAoAXExyOl26dlf1xHEx05?host=org.webhook.office.com",
			[]string{"11111111-4444-4444-8444-cccccccccccc", "22222222-4444-4444-8444-cccccccccccc", "33333333012222222222333333333344", "V2ESyij_gAljSoUQHvZoZYzlpAoAXExyOl26dlf1xHEx05"}, ""},
		{"wecom://693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa", []string{"693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"}, ""},
		{"discord://Wq3xNqLq8u8Wr0Lxz2dqPZ0jHNkV@1234567890123456", []string{"Wq3xNqLq8u8Wr0Lxz2dqPZ0jHNkV", "1234567890123456"}, ""},
		{"telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@channel-name", []string{"110201543", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}, ""},
		{"join://shoutrrr:Kp2Vb8qZs3XyT4wL@join/?devices=dev1", []string{"Kp2Vb8qZs3XyT4wL"}, ""},
		{"bark://:Dk3yQ8zVb2@api.day.app/", []string{"Dk3yQ8zVb2"}, "api.day.app"},
		{"zulip://bot%40example.com:Zk4pLq9sVb@chat.example.org/?stream=ops", []string{"bot@example.com", "Zk4pLq9sVb"}, "chat.example.org"},
		{"smtp://user:Sm7pPa55w0rd@mail.example.org:587/?from=a@b.c&to=d@e.f", []string{"Sm7pPa55w0rd"}, "mail.example.org"},
		{"gotify://gotify.example.org/AbCdEf12345", []string{"AbCdEf12345"}, "gotify.example.org"},
		{"ntfy://ntfy.sh/my-backups-4f2a", []string{"my-backups-4f2a"}, "ntfy.sh"},
		{"ntfy://alice:Nt5yPass@ntfy.example.org/topic9", []string{"Nt5yPass", "topic9"}, "ntfy.example.org"},
		{"matrix://bot:Mx8pAss@matrix.example.org/?rooms=!room:example.org", []string{"Mx8pAss"}, "matrix.example.org"},
		{"mattermost://bot@chat.example.org/Mm3tokenXyz/town-square", []string{"Mm3tokenXyz"}, "chat.example.org"},
		{"rocketchat://bot@chat.example.org/Rc1tokenA/Rc2tokenB", []string{"Rc1tokenA", "Rc2tokenB"}, "chat.example.org"},
		{"opsgenie://api.opsgenie.com/eb243592-faa2-4ba2-a551q-1afdf565c889", []string{"eb243592-faa2-4ba2-a551q-1afdf565c889"}, "api.opsgenie.com"},
		{"googlechat://chat.googleapis.com/v1/spaces/FOOBAR/messages?key=Gk3yAbc&token=Gt0kenXyz", []string{"Gk3yAbc", "Gt0kenXyz"}, "chat.googleapis.com"},
		{"lark://open.larksuite.com/Lk9tokenQ?secret=Ls3cretW", []string{"Lk9tokenQ", "Ls3cretW"}, "open.larksuite.com"},
		{"signal://sig:Sg5pass@signal.example.org:8080/+15551234567/+15557654321", []string{"Sg5pass", "+15551234567"}, "signal.example.org"},
		{"generic+https://hooks.example.org/api/Gn7tokenZ?template=json", []string{"Gn7tokenZ"}, "hooks.example.org"},
		{"https://hc-ping.com/0f3c2a6e-1111-2222-3333-444455556666", []string{"0f3c2a6e-1111-2222-3333-444455556666"}, "hc-ping.com"},
	} {
		t.Run(tc.url[:strings.Index(tc.url, ":")], func(t *testing.T) {
			var msg strings.Builder
			msg.WriteString("sending to " + tc.url + " failed:")
			for _, s := range tc.secrets {
				// in a request URL, as an HTTP error shows it (Slack's webhook path holds each part)
				msg.WriteString(" Post \"https://api.example/services/" + s + "/x\": refused;")
				msg.WriteString(" token " + s + " refused;")
			}
			msg.WriteString(" host " + tc.public)
			red := Redact(msg.String(), Secrets(tc.url))
			for _, s := range tc.secrets {
				if strings.Contains(red, s) {
					t.Errorf("%s survived: %s", s, red)
				}
			}
			if tc.public != "" && !strings.Contains(red, " host "+tc.public) {
				t.Errorf("the server's name %s was redacted: %s", tc.public, red)
			}
		})
	}
}
