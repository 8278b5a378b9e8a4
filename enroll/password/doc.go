// Package password owns the generation of new passwords for users (the
// `password:` settings, three styles) and the Active Directory complexity
// check every generated password must pass.
//
// Every generated password meets the Active Directory "password must meet
// complexity requirements" rule, and more:
//
//   - it contains all four classes: an uppercase letter, a lowercase letter, a
//     digit and a symbol (AD asks for three of five);
//   - it shares no run of three or more characters, compared case-insensitively,
//     with the username or with any token of the display name (AD splits the
//     display name on , . - _ space # and tab and ignores tokens shorter than
//     three characters; AD itself only refuses the whole sAMAccountName and whole
//     tokens, so this is stricter).
//
// Randomness comes from crypto/rand only and every choice is uniform (rejection
// sampling, no modulo bias). A candidate that breaks a rule is thrown away and a
// new one drawn, so readable and random passwords are uniform over the set of
// compliant strings; after a bounded number of draws (only reachable with
// adversarial names) a constructive fallback builds a compliant password
// character by character.
//
// Alphabets:
//
// readable (56 characters, 5.81 bits each) is for passwords read off a phone
// screen and typed on a PC, possibly with a French (AZERTY) or German (QWERTZ)
// keyboard:
//
//	uppercase  ABDEFGHJKLMNPRTY          (16)
//	lowercase  abcdefghijkmnpqrstuvwxyz  (24)
//	digits     23456789                  (8)
//	symbols    !$&()-/?                  (8)
//
// Why these:
//
//   - look-alikes out: 0 O o Q (zero and round letters), 1 l I (one, ell, eye);
//     lowercase i and j stay, their dot sets them apart in phone fonts, and
//     uppercase L stays because lowercase l is gone;
//   - letters whose capital is only a bigger lowercase (C S U V W X Z, and O)
//     are kept in lowercase only, so the case cannot be misread;
//   - symbols: only the eight on the first symbol page of both the iOS and the
//     Android keyboard, which are also typed without AltGr on AZERTY and QWERTZ
//     and are plain GSM-7 characters in an SMS. Left out: quotes (' " and the
//     phones' curly substitutes), backquote, ~ \ ^ | (hard to find, dead keys,
//     GSM extension table or not GSM at all), space, . , : ; (read as sentence
//     punctuation), @ (GSM code 0x00, mangled by some gateways) and the rest.
//
// random (94 characters, 6.55 bits each) is every printable ASCII character
// except space. Some of them ([ ] { } \ ^ ~ | and backquote) cost extra in an
// SMS or force UCS-2 encoding; that is the price of the style.
//
// words: Length/4+1 capitalised words from the embedded list words.txt (over
// 2,000 common words of 3-7 letters, about 11 bits each) joined by separators
// drawn from the readable digits and symbols (16, 4 bits each), at least one of
// each, e.g. "Maple7River-Stone(Cloud". Four words or more are at least
// 4*3+3 = 15 characters, so a words password is always at least Length long and
// usually nearly twice as long. For a user whose names rule out most of the list
// (fewer than 256 words left) the words style falls back to readable.
package password
